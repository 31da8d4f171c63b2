# cmake -DBUILD_DIR=... -DTARGET=... -DCONFIG=... [-DPROGRAM=...] -P build_and_run.cmake
# A test whose work is a build: builds TARGET (left out of "all"), then runs
# PROGRAM if there is one. The build is at the lowest CPU priority, where nice(1) exists, so
# that it takes only what the tests beside it leave idle.
set(config_arguments)
if(CONFIG)
  set(config_arguments --config ${CONFIG})
endif()
find_program(nice_program nice)
set(lowest_priority)
if(nice_program)
  set(lowest_priority ${nice_program} -n 19)
endif()
execute_process(COMMAND ${lowest_priority} ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
                        ${config_arguments} RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "building ${TARGET} failed (${result})")
endif()
if(PROGRAM)
  execute_process(COMMAND ${PROGRAM} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${PROGRAM} failed (${result})")
  endif()
endif()
