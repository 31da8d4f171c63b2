# cmake -DBUILD_DIR=... -DTARGET=... -DCONFIG=... -DEXPECT=<concept> -P expect_compile_failure.cmake
set(config_arguments)
if(CONFIG)
  set(config_arguments --config ${CONFIG})
endif()
execute_process(
  COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET} ${config_arguments}
  RESULT_VARIABLE result
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output)
if(result EQUAL 0)
  message(FATAL_ERROR "${TARGET} compiled, but it must be refused by the ${EXPECT} concept")
endif()
# The concept as the failing constraint (GCC, Clang), not merely as text
# in consumer's declaration, which every error about consumer<> quotes.
if(NOT output MATCHES "(satisfaction of|does not satisfy) [^ ]*${EXPECT}")
  message(FATAL_ERROR "${TARGET} failed to compile, but the output does not name ${EXPECT}:\n"
                      "${output}")
endif()
message(STATUS "${TARGET} was refused, naming ${EXPECT}")
