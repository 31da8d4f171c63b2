# The package's components and what each needs from outside. Read by
# CMakeLists.txt, to find them for the build, and installed beside
# WidgetConsumerConfig.cmake, to find them again in a user's project: one
# list, so the two cannot disagree about a dependency.
#
# Each dependency is "Package|find_package arguments|Debian package": the
# Debian package is named in the message when it is missing, since "CURL
# not found" does not tell a user what to install.
#
# Every component is a target of its own (WidgetConsumer::<component>) that
# links core. The names are what users write; whether a component's target
# is an INTERFACE library (header-only, today) or one that also carries
# compiled code is the package's business, so a compiled mode can change what
# stands behind a name and users' CMakeLists.txt stay as they are.
set(widget_consumer_components core aws metrics postgresql)

# Requests, widgets, the consumer, the directory source and store, the logs.
set(widget_consumer_core_dependencies "Boost|1.81 COMPONENTS json|libboost-json1.81-dev"
                                      "Threads||libc6-dev")
# The AWS client layer and the S3, SQS and DynamoDB policies: libcurl for
# HTTP, OpenSSL for SigV4, pugixml for S3's and STS's XML.
set(widget_consumer_aws_dependencies "CURL||libcurl4-openssl-dev" "OpenSSL||libssl-dev"
                                     "pugixml||libpugixml-dev")
# metrics/http_server.hpp: Boost.Beast and Boost.Asio, header-only parts of
# the core's Boost, on the core's threads. Nothing more to find; a target of
# its own all the same, for the code a compiled mode would put behind it.
set(widget_consumer_metrics_dependencies)
# destination/postgresql_table.hpp.
set(widget_consumer_postgresql_dependencies "PostgreSQL||libpq-dev")

# widget_consumer_find_component(COMPONENT): find_package() each dependency
# of COMPONENT, quietly; widget_consumer_missing lists the ones not found,
# each with its Debian package ("CURL (Debian: libcurl4-openssl-dev)").
# A macro, not a function: what find_package() sets (Boost_INCLUDE_DIRS,
# ...) stays visible to the caller, as it would without us.
macro(widget_consumer_find_component widget_consumer_component)
  set(widget_consumer_missing)
  foreach(widget_consumer_dependency IN
          LISTS widget_consumer_${widget_consumer_component}_dependencies)
    string(REPLACE "|" ";" widget_consumer_fields "${widget_consumer_dependency}")
    list(GET widget_consumer_fields 0 widget_consumer_package)
    list(GET widget_consumer_fields 1 widget_consumer_arguments)
    list(GET widget_consumer_fields 2 widget_consumer_debian)
    separate_arguments(widget_consumer_arguments UNIX_COMMAND "${widget_consumer_arguments}")
    find_package(${widget_consumer_package} ${widget_consumer_arguments} QUIET)
    if(NOT ${widget_consumer_package}_FOUND)
      list(APPEND widget_consumer_missing
           "${widget_consumer_package} (Debian: ${widget_consumer_debian})")
    endif()
  endforeach()
  unset(widget_consumer_dependency)
  unset(widget_consumer_fields)
  unset(widget_consumer_package)
  unset(widget_consumer_arguments)
  unset(widget_consumer_debian)
endmacro()
