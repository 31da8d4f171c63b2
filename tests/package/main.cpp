// Compiles against the installed headers and links the dependencies they
// bring; exits 0 when the installed package is usable.
#include <widget_consumer/metrics/http_server.hpp>
#include <widget_consumer/widget_consumer.hpp>

#include <iostream>

int main() {
  widget_consumer::widget widget{.widget_id = "w-1", .owner = "Mary Anne"};
  std::cout << "package_user: widget " << widget.widget_id << " of " << widget.owner << '\n';
  // The metrics server needs only Boost's headers and threads.
  widget_consumer::metrics_log metrics;
  widget_consumer::metrics::metrics_server server(
      widget_consumer::metrics::listen_address::parse("127.0.0.1:0"), metrics);
  const bool serves = server.port() != 0 && !metrics.exposition().empty();
  return widget.widget_id == "w-1" && serves ? 0 : 1;
}
