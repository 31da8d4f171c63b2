// The second translation unit with every header: together with main.cpp it
// makes the linker see each non-inline definition twice.
#include <widget_consumer/aws/client_settings.hpp>
#include <widget_consumer/metrics/http_server.hpp>
#include <widget_consumer/widget_consumer.hpp>
#ifdef WIDGET_CONSUMER_HEADER_CHECK_POSTGRESQL
#include <widget_consumer/destination/postgresql_table.hpp>
#endif
