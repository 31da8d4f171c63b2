# Installs widget_consumer into a fresh prefix and builds the projects in
# tests/package/ (separate projects) against it, then runs their programs.
# Run with cmake -P.
cmake_minimum_required(VERSION 3.25)
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

function(run_step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "package test step failed (${result}): ${ARGN}")
  endif()
endfunction()

# Only the library: the installed tree must not need our tests or examples.
run_step(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/library -G ${GENERATOR}
         -DCMAKE_INSTALL_PREFIX=${prefix} -DWIDGET_CONSUMER_BUILD_TESTS=OFF
         -DWIDGET_CONSUMER_BUILD_EXAMPLES=OFF -DWIDGET_CONSUMER_BUILD_BENCHMARKS=OFF)
run_step(${CMAKE_COMMAND} --install ${WORK_DIR}/library)

# Headers that fail when included: one folder with every curl and OpenSSL
# header, one with those and libpq's. A user project that puts them first on its
# include path builds only if nothing it includes reaches those libraries.
set(poisoned ${WORK_DIR}/poisoned)
function(poison folder library)
  foreach(pattern IN LISTS ARGN)
    file(GLOB_RECURSE headers RELATIVE /usr/include /usr/include/${pattern})
    foreach(header IN LISTS headers)
      # The multiarch folder's headers (x86_64-linux-gnu/openssl/...) are
      # included as <openssl/...>.
      string(REGEX REPLACE "^[a-z0-9_]+-linux-gnu[a-z]*/" "" included ${header})
      string(REGEX REPLACE "^postgresql/" "" included ${included})
      file(WRITE ${poisoned}/${folder}/${included}
           "#error \"<${included}> reached: this part of widget_consumer "
           "must not need ${library}\"\n")
    endforeach()
  endforeach()
endfunction()
set(aws_headers curl/*.h openssl/*.h *-linux-gnu*/openssl/*.h *-linux-gnu*/curl/*.h pugixml.hpp
                pugiconfig.hpp)
set(libpq_headers postgresql/libpq-fe.h postgresql/libpq/*.h postgresql/pg_config*.h
                  postgresql/postgres_ext.h)
poison(aws "curl, OpenSSL or pugixml" ${aws_headers})
poison(all "curl, OpenSSL, pugixml or libpq" ${aws_headers} ${libpq_headers})

# The plain use, with PostgreSQL hidden: the package must not need libpq,
# and the whole library (WidgetConsumer::widget_consumer) is there as before
# there were components.
run_step(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package -B ${WORK_DIR}/user -G ${GENERATOR}
         -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_DISABLE_FIND_PACKAGE_PostgreSQL=ON)
run_step(${CMAKE_COMMAND} --build ${WORK_DIR}/user)
run_step(${WORK_DIR}/user/package_user)

# The directory source and store alone: curl, OpenSSL and pugixml hidden from CMake
# and their headers (and libpq's) poisoned.
run_step(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package/directory_only -B
         ${WORK_DIR}/directory_only -G ${GENERATOR} -DCMAKE_PREFIX_PATH=${prefix}
         -DCMAKE_DISABLE_FIND_PACKAGE_CURL=ON -DCMAKE_DISABLE_FIND_PACKAGE_OpenSSL=ON
         -DCMAKE_DISABLE_FIND_PACKAGE_pugixml=ON
         -DPOISONED_INCLUDE_DIR=${poisoned}/all)
run_step(${CMAKE_COMMAND} --build ${WORK_DIR}/directory_only)
run_step(${WORK_DIR}/directory_only/directory_user)

# A component asked for whose dependency is missing: the configuration fails
# and names the Debian package. Each case: requested components (";"
# inside, "," between them here), the package hidden, the expected text.
set(cases "aws|CURL|libcurl4-openssl-dev" "aws,metrics|OpenSSL|libssl-dev" "aws|pugixml|libpugixml-dev"
          "|CURL|libcurl4-openssl-dev" "core|Boost|libboost-json1.81-dev")
if(WITH_POSTGRESQL)
  list(APPEND cases "core,postgresql|PostgreSQL|libpq-dev")
endif()
foreach(case IN LISTS cases)
  string(REPLACE "|" ";" fields "${case}")
  list(GET fields 0 requested)
  list(GET fields 1 hidden)
  list(GET fields 2 expected)
  string(REPLACE "," ";" requested "${requested}")
  set(dir ${WORK_DIR}/missing_${hidden})
  execute_process(
    COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package/missing_dependency -B ${dir} -G
            ${GENERATOR} -DCMAKE_PREFIX_PATH=${prefix} "-DREQUESTED=${requested}"
            -DCMAKE_DISABLE_FIND_PACKAGE_${hidden}=ON
    RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
  file(REMOVE_RECURSE ${dir})
  string(REGEX REPLACE "[ \n]+" " " flat "${output}")
  if(result EQUAL 0 OR NOT flat MATCHES "${expected}")
    message(FATAL_ERROR "asking for [${requested}] with ${hidden} hidden should fail naming "
                        "${expected}; it ended ${result} with:\n${output}")
  endif()
  message(STATUS "[${requested}] with ${hidden} hidden fails naming ${expected}")
endforeach()

# The postgresql component, when the library was built with libpq.
if(WITH_POSTGRESQL)
  run_step(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package -B ${WORK_DIR}/user_postgresql -G
           ${GENERATOR} -DCMAKE_PREFIX_PATH=${prefix} -DWITH_POSTGRESQL=ON
           -DPOISONED_INCLUDE_DIR=${poisoned}/aws)
  run_step(${CMAKE_COMMAND} --build ${WORK_DIR}/user_postgresql)
  run_step(${WORK_DIR}/user_postgresql/package_user_postgresql)
endif()
