// libFuzzer target for parse_request(): no crash, no sanitizer report, and
// the invariants a successful parse promises.
#include "widget_consumer/destination/detail/dynamodb_widget.hpp"
#include "widget_consumer/destination/detail/widget_document.hpp"
#include "widget_consumer/widget.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

void require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace widget_consumer;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const auto result = parse_request(body);
  if (const auto* error = std::get_if<validation_error>(&result)) {
    require(!error->field.empty() && !error->problem.empty(), "error names field and problem");
    require(detail::is_valid_utf8(error->message()), "error message is UTF-8");
    return 0;
  }
  const auto& request = std::get<widget_request>(result);
  require(!request.request_id.empty(), "requestId non-empty");
  require(!request.widget_id.empty(), "widgetId non-empty");
  require(is_valid_owner(request.owner), "owner matches [A-Za-z ]+");

  const widget made = make_widget(request);
  require(widget_from_json(to_json(made)) == made, "to_json round trip");
  widget updated = made;
  apply_update(updated, request);
  require(updated.widget_id == made.widget_id && updated.owner == made.owner,
          "update keeps id and owner");
  try {
    (void)dynamodb_put_item(made);
    (void)dynamodb_update_item(request);
    (void)dynamodb_delete_item(request);
  } catch (const item_too_large&) {
    // A clear per-request error is the intended outcome for oversized input.
  } catch (const reserved_attribute_name&) {
    // Likewise for an attribute named id, which parse_request() accepts.
  }
  return 0;
}
