# Installs widget_consumer into a fresh prefix and builds tests/package/ (a
# separate project) against it, then runs its program. Run with cmake -P.
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
# The plain use, with PostgreSQL hidden: the package must not need libpq.
run_step(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package -B ${WORK_DIR}/user -G ${GENERATOR}
         -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_DISABLE_FIND_PACKAGE_PostgreSQL=ON)
run_step(${CMAKE_COMMAND} --build ${WORK_DIR}/user)
run_step(${WORK_DIR}/user/package_user)

# The postgresql component, when the library was built with libpq.
if(WITH_POSTGRESQL)
  run_step(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package -B ${WORK_DIR}/user_postgresql -G
           ${GENERATOR} -DCMAKE_PREFIX_PATH=${prefix} -DWITH_POSTGRESQL=ON)
  run_step(${CMAKE_COMMAND} --build ${WORK_DIR}/user_postgresql)
  run_step(${WORK_DIR}/user_postgresql/package_user)
  run_step(${WORK_DIR}/user_postgresql/package_user_postgresql)
endif()
