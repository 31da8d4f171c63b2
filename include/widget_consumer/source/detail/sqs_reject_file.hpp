#pragma once
// Rejects of a queue with neither a dead-letter queue nor a RedrivePolicy,
// kept in a local file (sqs_queue_options::rejects_file) before their
// messages are deleted: the course's queue has no redrive policy, and a
// reject left in a FIFO queue would block its widget's group for good.
//
// One JSON object a line (JSON Lines), appended and flushed to the disk
// (fsync) before the delete is sent, so a crash between the two leaves the
// request in the file and in the queue, never in neither: at-least-once, a
// line may repeat. Each line holds everything needed to send the request
// again by hand: the body as received, the reason, the message id, the
// queue and the time.
//
//   {"time":"2026-12-07T08:00:00.000Z","queue":"https://...","messageId":"...",
//    "reason":"...","body":"..."}
//
// The settler thread's (sqs_settling.hpp); not thread-safe.

#include <widget_consumer/source/detail/sqs_dead_letter.hpp>

#include <boost/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace widget_consumer::detail {

class sqs_reject_file {
 public:
  sqs_reject_file() = default;
  // Opens (creates) the file for appending; throws std::invalid_argument
  // naming the file and the system's reason, at start-up rather than at
  // the first reject.
  explicit sqs_reject_file(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd_ < 0)
      throw std::invalid_argument("cannot open the file for rejected requests " + path_ + ": " +
                                  std::strerror(errno));
  }
  sqs_reject_file(sqs_reject_file&& other) noexcept
      : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}
  sqs_reject_file& operator=(sqs_reject_file&& other) noexcept {
    if (this != &other) {
      close();
      path_ = std::move(other.path_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~sqs_reject_file() { close(); }

  bool is_open() const noexcept { return fd_ >= 0; }
  const std::string& path() const noexcept { return path_; }

  // Appends one reject and flushes it to the disk; "" when it is there,
  // else why not (the message is then not deleted, and comes back).
  std::string write(std::string_view queue_url, const sqs_dead_letters::rejected& item) {
    boost::json::object line{{"time", now_text()},
                             {"queue", queue_url},
                             {"messageId", item.ticket.message_id},
                             {"reason", item.reason},
                             {"body", item.body}};
    std::string text = boost::json::serialize(line);
    text += '\n';
    std::string_view rest = text;
    while (!rest.empty()) {
      const auto written = ::write(fd_, rest.data(), rest.size());
      if (written < 0 && errno == EINTR)
        continue;
      if (written <= 0)
        return "writing " + path_ + " failed: " + std::strerror(errno);
      rest.remove_prefix(static_cast<std::size_t>(written));
    }
    if (::fsync(fd_) != 0)
      return "flushing " + path_ + " to the disk failed: " + std::strerror(errno);
    return {};
  }

 private:
  void close() noexcept {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }

  static std::string now_text() {
    const auto now = std::chrono::system_clock::now();
    const auto seconds = std::chrono::system_clock::to_time_t(now);
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    char text[32];
    const auto length = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
    return std::string(text, length) + "." + std::to_string(1000 + millis).substr(1) + "Z";
  }

  std::string path_;
  int fd_ = -1;
};

}  // namespace widget_consumer::detail
