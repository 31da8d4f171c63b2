# Warnings-as-errors for the project's own targets (tests, examples,
# benchmarks). Never put on the INTERFACE target: users choose their own flags.
add_library(widget_consumer_warnings INTERFACE)
target_compile_options(
  widget_consumer_warnings
  INTERFACE $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra -Wpedantic -Wshadow -Wconversion
            -Wno-sign-conversion -Werror>)

# GCC 12 at -O3 (Release) reports -Wrestrict inside libstdc++'s own
# std::string operator+ when one side is a literal: a false positive, GCC bug
# 105329. Only the compiler version Debian 12 ships, where we see it, loses
# only that warning.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12
   AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(widget_consumer_warnings INTERFACE -Wno-restrict)
endif()

# The sanitizer build of scripts/test sets WIDGET_CONSUMER_SANITIZE=ON.
option(WIDGET_CONSUMER_SANITIZE "Build the project's targets with ASan+UBSan" OFF)
if(WIDGET_CONSUMER_SANITIZE)
  target_compile_options(widget_consumer_warnings
                         INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
                                   -fno-sanitize-recover=undefined)
  target_link_options(widget_consumer_warnings INTERFACE -fsanitize=address,undefined)
endif()
