#pragma once
// The consumer programs' exit status, in one place: the codes, what each
// means (the --help epilog is made from this table, and README.md, "Exit
// status", repeats it), and the code a finished run ends with.
// A scheduler (cron, a Kubernetes Job) reads only this number, so a run that
// could not reach its source, or left work behind, must not look like one
// that did its work.

#include <widget_consumer/events.hpp>

#include <array>
#include <string>
#include <string_view>

namespace examples::exit_status {

inline constexpr int finished = 0;
inline constexpr int failed = 1;
inline constexpr int usage = 2;
inline constexpr int work_left = 3;
inline constexpr int never_reached = 4;
inline constexpr int stop_deadline = 5;
// Plus n: a second signal n ends the process at once (widget_consumer/stop.hpp).
inline constexpr int second_signal = 128;

struct meaning {
  int code;
  std::string_view text;
};

inline constexpr std::array<meaning, 7> table{{
    {finished,
     "finished as asked (-mrt, --max-idle or a signal), a poll reached the source, and "
     "every request taken was settled"},
    {failed,
     "failed: what retrying cannot fix (no credentials, a missing bucket, queue or table, "
     "access denied), a queue that could not be looked up at start, or 10 failed polls in a "
     "row after one had succeeded"},
    {usage, "bad command line"},
    {work_left,
     "finished, but requests taken were left unsettled (released after a store failure, "
     "or their ack or reject failed), or --max-idle ended it while polls were failing, so the "
     "source was not seen empty; what is left stays in the source, none is lost"},
    {never_reached,
     "the source was never reached: no poll succeeded (nothing listening, network down)"},
    {stop_deadline,
     "a signal's graceful stop outlasted --stop-deadline; what was not settled stays in "
     "the source"},
    {second_signal, "a second signal n (SIGINT, SIGTERM) ended it at once"},
}};

// The --help epilog: one line per code, its meaning wrapped under it.
inline std::string help() {
  constexpr std::size_t width = 88;
  const std::string indent(9, ' ');
  std::string text = "Exit status:\n";
  for (const auto& [code, text_of_code] : table) {
    std::string line =
        "  " + (code == second_signal ? std::to_string(code) + "+n" : std::to_string(code));
    line.resize(indent.size(), ' ');
    bool line_empty = true;
    for (std::size_t start = 0; start < text_of_code.size();) {
      std::size_t end = text_of_code.find(' ', start);
      if (end == std::string_view::npos)
        end = text_of_code.size();
      const std::string_view word = text_of_code.substr(start, end - start);
      if (!line_empty && line.size() + 1 + word.size() > width) {
        text += line + '\n';
        line = indent;
        line_empty = true;
      }
      if (!line_empty)
        line += ' ';
      line += word;
      line_empty = false;
      start = end + 1;
    }
    text += line + '\n';
  }
  return text;
}

// --max-idle ends a run when nothing came for a while, and while polls fail
// nothing comes either: that idleness says nothing about the source.
inline bool idle_unseen(const widget_consumer::consumer_summary& summary) {
  return summary.reason == widget_consumer::stop_reason::max_idle &&
         summary.failed_polls_at_end > 0;
}

// A run that returned (not one that threw: that is `failed`).
inline int of(const widget_consumer::consumer_summary& summary) {
  using widget_consumer::stop_reason;
  if (summary.reason == stop_reason::unrecoverable)
    return failed;
  // Checked before poll_failures: ten refused connections in a row are
  // "never reached", not an error the source named.
  if (summary.last_poll_ok == widget_consumer::log_clock::time_point{})
    return never_reached;
  if (summary.reason == stop_reason::poll_failures)
    return failed;
  if (summary.unsettled > 0 || idle_unseen(summary))
    return work_left;
  return finished;
}

// Why a run that returned ends with 3 or 4, for its last log line; "" else
// (a failure was logged when it happened).
inline std::string explain(int code, const widget_consumer::consumer_summary& summary) {
  switch (code) {
    case work_left: {
      std::string why = "exit status " + std::to_string(code) + ": ";
      if (summary.unsettled > 0)
        why += std::to_string(summary.unsettled) +
               " requests taken were left unsettled (released, or their ack or reject "
               "failed); they stay in the source and come again";
      if (summary.unsettled > 0 && idle_unseen(summary))
        why += "; and ";
      if (idle_unseen(summary))
        why += "the run went idle while its last " + std::to_string(summary.failed_polls_at_end) +
               " polls failed: the source was not seen empty";
      return why;
    }
    case never_reached:
      return "exit status " + std::to_string(code) + ": no poll of the source succeeded (" +
             std::to_string(summary.stats.poll_failures) + " failed)";
    default:
      return {};
  }
}

}  // namespace examples::exit_status
