// Must NOT compile: this source forgot flush(), so it is not a
// request_source, and consumer<> must say so by name.

#include <chrono>
#include <cstddef>
#include <string_view>
#include <vector>

#include "widget_consumer/concepts.hpp"
#include "widget_consumer/consumer.hpp"
#include "widget_consumer/log/null.hpp"

namespace {

using namespace widget_consumer;

struct source_without_flush {
  using ticket_type = int;
  std::vector<received_request<int>> poll(std::chrono::milliseconds, std::size_t) { return {}; }
  void ack(int) {}
  void release(int, std::chrono::milliseconds) {}
  void reject(int, std::string_view) {}
  bool ordered() const { return true; }
};

struct accepting_store {
  apply_outcome apply(const widget_request&) { return apply_outcome::applied; }
};

}  // namespace

int main() {
  source_without_flush source;
  accepting_store store;
  null_log log;
  consumer<source_without_flush, accepting_store, null_log> broken(source, store, log);
  return static_cast<int>(broken.run().stats.processed_total());
}
