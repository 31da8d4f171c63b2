#pragma once
// widget_holds: which of a widget's requests may go to the store while an
// earlier one waits for a retry. Pure bookkeeping (no clock of its own, no
// locks): one per lane, used only by that lane's thread.
//
// After a store failure releases a request, the widget's later requests are
// released too, or they would overtake it. Remembering only the failed one is
// not enough: those released because of it come back in whatever order their
// delays end, and one arriving after the failed one was applied would go
// before an older one still waiting (K1, K3, K2). So each held widget has a
// queue of the requests released on its account, in the order they first
// arrived (the source's order), and only its head goes through; a request
// that comes back out of turn is released again and keeps its place.
//
// Expiry: when a release may take the request to another consumer (SQS), it
// may never come back here, so a hold ends max_hold after its head last
// moved. When the source keeps its releases (S3, directory: `local`), the
// request always comes back, however late (the S3 source lists it again only
// on its next pass), and a hold that expired first would let a later request
// overtake it: such holds do not expire. They end when the source says the
// request went to another consumer (forget(): the S3 source's partition of
// the widget changed hands), which then has the widget's requests in order.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>

namespace widget_consumer::detail {

class widget_holds {
 public:
  using clock = std::chrono::steady_clock;

  widget_holds(std::chrono::milliseconds max_hold, bool local)
      : max_hold_(max_hold), local_(local) {}

  // The request `name` of `widget` arrives: "" when it may go to the store,
  // else the name of the request it waits for (it is to be released).
  std::string admit(const std::string& widget, const std::string& name, clock::time_point now) {
    if (!local_)
      std::erase_if(held_, [&](const auto& entry) { return entry.second.until <= now; });
    const auto found = held_.find(widget);
    if (found == held_.end())
      return {};
    auto& queue = found->second.queue;
    if (queue.front() == name)
      return {};
    if (std::find(queue.begin(), queue.end(), name) == queue.end())
      queue.push_back(name);
    return queue.front();
  }

  // The request that was admitted has been settled: `blocked` when a store
  // failure released it (the widget is held behind it), else it is done with
  // (applied, rejected, or released for a reason of its own) and the next in
  // line may go.
  void settled(const std::string& widget, const std::string& name, bool blocked,
               clock::time_point now) {
    auto found = held_.find(widget);
    if (blocked) {
      if (found == held_.end())
        found = held_.emplace(widget, hold{{name}, {}}).first;
      found->second.until = now + max_hold_;
      return;
    }
    if (found == held_.end())
      return;
    auto& queue = found->second.queue;
    if (queue.front() == name)
      queue.pop_front();
    if (queue.empty())
      held_.erase(found);
    else
      found->second.until = now + max_hold_;
  }

  // `name` will not come back to this consumer (another consumer has it,
  // concepts.hpp, release_forgetting): nothing of `widget` waits for it any
  // more. The next in line, if any, goes when it comes back.
  void forget(const std::string& widget, const std::string& name) {
    const auto found = held_.find(widget);
    if (found == held_.end())
      return;
    auto& queue = found->second.queue;
    std::erase(queue, name);
    if (queue.empty())
      held_.erase(found);
  }

  bool holds(std::string_view widget) const { return held_.contains(std::string(widget)); }
  std::size_t size() const noexcept { return held_.size(); }

 private:
  struct hold {
    std::deque<std::string> queue;  // front: the request the others wait for
    clock::time_point until;        // when not local_
  };

  std::chrono::milliseconds max_hold_;
  bool local_;
  std::unordered_map<std::string, hold> held_;
};

}  // namespace widget_consumer::detail
