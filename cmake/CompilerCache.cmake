# ccache, when installed (scripts/setup installs it), for the project's own
# builds: a second build of the same sources, in another build folder or a
# fresh clone (scripts/test builds the programs again for the benchmark's
# smoke run and for the demo in a fresh clone), costs no compile, and a miss
# costs nothing measurable. CCACHE_BASEDIR makes the cache's keys relative
# to the repository, so two clones at different paths share them. A
# launcher the user set is kept. Included by our top-level projects only:
# a parent project's compilers are its own business.
if(NOT CMAKE_CXX_COMPILER_LAUNCHER)
  find_program(WIDGET_CONSUMER_CCACHE ccache)
  mark_as_advanced(WIDGET_CONSUMER_CCACHE)
  if(WIDGET_CONSUMER_CCACHE)
    get_filename_component(widget_consumer_repository ${CMAKE_CURRENT_LIST_DIR} DIRECTORY)
    set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env
                                    CCACHE_BASEDIR=${widget_consumer_repository}
                                    ${WIDGET_CONSUMER_CCACHE})
  endif()
endif()
