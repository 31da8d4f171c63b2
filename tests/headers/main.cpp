// The first of two translation units that include every header; see
// CMakeLists.txt. A duplicate definition would fail the link.
#include <widget_consumer/aws/client_settings.hpp>
#include <widget_consumer/metrics/http_server.hpp>
#include <widget_consumer/widget_consumer.hpp>
#ifdef WIDGET_CONSUMER_HEADER_CHECK_POSTGRESQL
#include <widget_consumer/destination/postgresql_table.hpp>
#endif

int main() {
  return 0;
}
