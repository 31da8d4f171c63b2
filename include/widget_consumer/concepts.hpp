#pragma once
// The three policy concepts of consumer<Source, Destination, Log>. Each
// concept is a conjunction of small capabilities, one `requires` expression
// each, so a compiler error names the capability a policy lacks.
// docs/concepts.md holds the full tables, the exemplars and the models we
// ship. The types they exchange live in headers of their own, included here:
// delivery.hpp (what a source delivers and reports), store_error.hpp (what a
// store returns and throws), events.hpp (what the consumer logs).

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <widget_consumer/delivery.hpp>
#include <widget_consumer/events.hpp>
#include <widget_consumer/request.hpp>
#include <widget_consumer/store_error.hpp>

namespace widget_consumer {

// ---------------------------------------------------------------------------
// Request sources
// ---------------------------------------------------------------------------

/// poll(wait, max): up to max requests, in source order. May block up to wait
/// for requests to arrive (SQS long polling); a source that cannot wait
/// returns at once. An empty vector means "nothing now". Throws on failure.
template <class S>
concept request_polling = requires(S& source, std::chrono::milliseconds wait, std::size_t max) {
  typename S::ticket_type;
  requires std::movable<typename S::ticket_type>;
  {
    source.poll(wait, max)
    } -> std::same_as<std::vector<received_request<typename S::ticket_type>>>;
};

/// ack: the store confirmed the request; remove it from the source.
/// release: leave it for a later delivery, not before delay has passed.
/// reject: move it aside (rejected/ prefix, dead-letter queue) with reason.
/// Each may act at once or queue the operation for flush() (S3 DeleteObjects,
/// SQS DeleteMessageBatch). Failures are reported by flush(); an exception
/// thrown from these calls is treated the same way.
///
/// The settlement contract, which every source we ship keeps: a ticket is
/// settled once per delivery. Settling one that is not in flight (its
/// delivery settled already, or a name this source never handed out) does
/// nothing to the request and is reported by the next flush() as a
/// settle_failure naming the ticket; it is never thrown. A mistake of the
/// caller thus reaches the log and the settle_failures count like any other
/// settlement that did not take effect, and the request is still settled by
/// its own delivery or comes back. (An SQS ticket built by hand from a
/// receipt handle is the one exception: the service, not the source, decides
/// it, and flush() reports what the service refuses.)
template <class S>
concept request_settling = requires(S& source, typename S::ticket_type ticket,
                                    std::chrono::milliseconds delay, std::string_view reason) {
  source.ack(std::move(ticket));
  source.release(std::move(ticket), delay);
  source.reject(std::move(ticket), reason);
};

/// flush(): perform every queued ack/release/reject, wait for the calls
/// begin_flush() began (background_flushing), and report those that failed
/// since the last flush. The consumer calls it after each round of
/// settlements (begin_flush() instead, when the source has it) and before
/// run() returns.
template <class S>
concept settlement_flushing = requires(S& source) {
  { source.flush() } -> std::same_as<std::vector<settle_failure>>;
};

/// ordered(): true when the source delivers one widget's requests in the
/// order they were written (S3 key order, SQS FIFO). When false (standard
/// SQS), an update or delete that finds no widget may have overtaken its
/// create, so the consumer releases it until receive_count reaches a limit.
template <class S>
concept order_reporting = requires(const S& source) {
  { source.ordered() } -> std::convertible_to<bool>;
};

/// Called from one thread only (the consumer's poll thread): a source need
/// not be thread-safe.
template <class S>
concept request_source =
    request_polling<S> && request_settling<S> && settlement_flushing<S> && order_reporting<S>;

/// Optional, not part of request_source: request_stop() tells the source that
/// the consumer will not poll again in this run (a stop was requested), so it
/// can stop fetching ahead (SQS receives) while the work in flight is settled.
/// It must not block, and drops nothing: what was fetched is still settled or
/// given back as usual. The consumer calls it once, from the poll thread.
template <class S>
concept stop_requesting = requires(S& source) {
  source.request_stop();
};

/// Optional, not part of request_source: begin_flush() hands every queued
/// ack/release/reject to a thread of the source's own and returns without
/// waiting for the calls, so the poll thread goes on dispatching during their
/// round trips. It returns the failures known by then: settlements refused at
/// once, and calls that ended since the last flush. A call still running
/// reports its failures through a later begin_flush() or flush(); flush()
/// waits for every call begun, so the consumer's last flush() before run()
/// returns reports them all. Calls begun by one begin_flush() take effect
/// after those of the earlier ones (an SQS FIFO group keeps its order). The
/// source's own thread is no exception to "a source need not be
/// thread-safe": what it shares with the poll thread, it guards.
template <class S>
concept background_flushing = requires(S& source) {
  { source.begin_flush() } -> std::same_as<std::vector<settle_failure>>;
};

/// Optional, for sources and stores alike: check_ready() checks, before the
/// first poll, what can be checked without changing anything (the bucket,
/// queue or table exists and these credentials may use it). It throws
/// unrecoverable_error (unrecoverable_error.hpp) for what retrying cannot
/// fix, and run() passes that on at once; any other exception may heal, so
/// the consumer logs it as a warning and starts anyway.
template <class P>
concept startup_checking = requires(P& policy) {
  policy.check_ready();
};

/// Optional, not part of request_source: releases_locally() is true when a
/// released request can only come back to this source object (S3 and
/// directory sources keep their releases; an SQS release may go to another
/// consumer). It decides whether the consumer's hold of a widget behind a
/// failed request may expire (consumer_options::max_hold): a local release
/// always comes back, however late, so its hold waits for it and nothing of
/// the widget overtakes it. Without the member, releases are taken as not
/// local.
template <class S>
concept local_releasing = requires(const S& source) {
  { source.releases_locally() } -> std::convertible_to<bool>;
};

/// Optional, not part of request_source: take_forgotten_releases() names the
/// requests released earlier (with their widget) that the source will not
/// deliver again to this consumer, since the last call: a source that keeps
/// its releases (local_releasing) yet shares its requests with other
/// consumers (the S3 source's partitions) may hand a released request's
/// widget to another consumer, which applies it. The consumer's hold of the
/// widget behind such a request would otherwise wait for it for good, and
/// every later request of the widget with it. The consumer calls it after
/// every poll, before it dispatches what the poll returned; called from the
/// poll thread.
template <class S>
concept release_forgetting = requires(S& source) {
  { source.take_forgotten_releases() } -> std::same_as<std::vector<forgotten_release>>;
};

/// Optional, not part of request_source: has_pending() is true while the
/// source holds requests it has not delivered yet (listed and being fetched,
/// waiting behind the oldest, released and not yet due), even when poll()
/// just returned nothing. The consumer's max_idle then does not run: idle
/// means nothing to do, not nothing handed out lately. Must not block for
/// long; called from the poll thread.
template <class S>
concept pending_reporting = requires(S& source) {
  { source.has_pending() } -> std::convertible_to<bool>;
};

/// Optional, not part of request_source: backlog() is how many requests the
/// source has listed (or otherwise knows of) and not handed out yet, for an
/// autoscaler to scale consumers on. The consumer reads it once per poll
/// round when its log observes state (state_observing), in consumer_state.
/// Must not block for long; called from the poll thread.
template <class S>
concept backlog_reporting = requires(S& source) {
  { source.backlog() } -> std::convertible_to<std::uint64_t>;
};

/// Optional, not part of request_source: heartbeat_failures() counts, since
/// the source was made, the visibility extensions the source's heartbeat had
/// refused for requests still in flight (each may be handed to another
/// consumer while this one works on it). The consumer reads it after every
/// poll, counts what is new in consumer_stats::heartbeat_refusals and warns.
/// Must not block for long; called from the poll thread.
template <class S>
concept heartbeat_refusal_reporting = requires(const S& source) {
  { source.heartbeat_failures() } -> std::convertible_to<std::uint64_t>;
};

/// Optional, not part of request_source: take_warnings() hands over what the
/// source found worth a warning since the last call, on threads of its own
/// (a resend to a dead-letter queue that may now hold a message twice, a
/// partition claim found gone), and forgets it. The consumer calls it after
/// every poll and before run() returns, and logs each text as a warning. Must
/// not block for long; called from the poll thread.
template <class S>
concept warning_reporting = requires(S& source) {
  { source.take_warnings() } -> std::same_as<std::vector<std::string>>;
};

// ---------------------------------------------------------------------------
// Widget stores
// ---------------------------------------------------------------------------

/// apply(request): create (replaces), update (not_found if the widget is
/// missing or its owner differs, no change), delete (not_found if missing).
/// Returns only once the change is durable; idempotent, because a request
/// may be delivered twice. Called concurrently from the consumer's lanes, but
/// never concurrently for the same widgetId.
template <class D>
concept request_applying = requires(D& store, const widget_request& request) {
  { store.apply(request) } -> std::same_as<apply_outcome>;
};

/// A widget store: what consumer<Source, Destination, Log> requires of Destination.
template <class D>
concept widget_store = request_applying<D>;

/// Optional, not part of widget_store: apply(request, position) applies the
/// request only if position (position.hpp) is newer than the widget's stored
/// position, atomically with the write, and stores the new position with it;
/// otherwise it changes nothing and returns apply_outcome::stale. A delete
/// leaves a tombstone holding its position, so a late create is refused too.
/// The consumer calls it, in place of apply(request), for every request whose
/// source gave a position; a store built without fencing (--no-fencing)
/// ignores the position. Same threading as apply(request).
template <class D>
concept position_fencing = requires(D& store, const widget_request& request,
                                    std::string_view position) {
  { store.apply(request, position) } -> std::same_as<fenced_outcome>;
};

// ---------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------

/// The hooks the consumer calls. Called concurrently from several threads:
/// a log either locks itself or, better, is a basic_log<Sink> (log/basic_log.hpp),
/// which takes its mutex and then calls a sink's unlocked hooks.
template <class L>
concept request_logging = requires(L& log, const request_event& event) {
  log.request(event);
};

/// A log takes the consumer's messages at four levels.
template <class L>
concept message_logging = requires(L& log, std::string_view text) {
  log.debug(text);
  log.info(text);
  log.warning(text);
  log.error(text);
};

/// A log takes the periodic progress counts and the end-of-run summary.
template <class L>
concept progress_logging = requires(L& log, const progress_event& progress,
                                    const consumer_summary& summary) {
  log.progress(progress);
  log.summary(summary);
};

/// A log can be flushed before run() returns.
template <class L>
concept log_flushing = requires(L& log) {
  log.flush();
};

/// A log policy: what consumer<Source, Destination, Log> requires of Log.
template <class L>
concept log_policy =
    request_logging<L> && message_logging<L> && progress_logging<L> && log_flushing<L>;

/// Optional, not part of log_policy, for logs that keep metrics rather than
/// lines (metrics/metrics_log.hpp); tee_log passes each to the sides that
/// have it. observe(state): the poll thread's counts and gauges after each
/// poll and each round of settlements. store_call(event): one store call,
/// from the lane thread that made it, so concurrently. Both run on the hot
/// path: they must be cheap and must not throw.
template <class L>
concept state_observing = requires(L& log, const consumer_state& state) {
  log.observe(state);
};

/// See state_observing: a log that times each store call.
template <class L>
concept store_call_observing = requires(L& log, const store_call_event& event) {
  log.store_call(event);
};

/// What basic_log<Sink> needs from a sink: one unlocked hook per event kind,
/// never called concurrently.
template <class S>
concept log_sink = requires(S& sink, const request_event& event, const log_message& message,
                            const progress_event& progress, const consumer_summary& summary) {
  sink.write(event);
  sink.write(message);
  sink.write(progress);
  sink.write(summary);
  sink.flush();
};

}  // namespace widget_consumer
