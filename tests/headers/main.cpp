// The first of two translation units that include every header; see
// CMakeLists.txt. A duplicate definition would fail the link.
#include <widget_consumer/aws/client_settings.hpp>
#include <widget_consumer/widget_consumer.hpp>

int main() { return 0; }
