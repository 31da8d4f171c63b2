#pragma once
// fault_proxy: tests/support/fault_proxy.py run for the length of one scope.
// The constructor starts it (with the project's venv python) between the
// caller and a local AWS server and waits, bounded, for its port; the
// destructor stops it by its PID (SIGTERM, then SIGKILL) and reaps it. A
// test process killed before that takes the proxy with it (--parent-pid): so
// construct it on a thread that lives as long as it does.
//
// The venv is $WIDGET_CONSUMER_VENV when set, else <source>/.venv, the one
// scripts/setup makes.

#include <boost/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace widget_consumer::testing {

struct fault_proxy_options {
  std::string upstream;  // http://127.0.0.1:PORT
  std::uint64_t seed = 1;
  int delay_ms = 0;                      // a simulated round trip, half each way
  int slow_ms = 3000;                    // how long a "slow" answer is held
  int late_ms = 0;                       // answers slower than this count as late (0: none)
  std::map<std::string, double> faults;  // kind -> rate: throttle, after, reset, reset-after, slow
  // "KIND:TEXT[:COUNT]", KIND refuse or after: the SQS deletes (JSON
  // protocol) naming a received message whose body holds TEXT get KIND, at
  // most COUNT times per message (fault_proxy.py --message-fault).
  std::vector<std::string> message_faults;
  // "HEADER=PATH": requests carrying HEADER are held before they are
  // forwarded until PATH exists, at most 60 s (fault_proxy.py --hold).
  std::vector<std::string> holds;
  std::chrono::milliseconds start_timeout{10000};
};

// What the proxy counted (its --stats-file).
struct fault_proxy_stats {
  std::uint64_t requests = 0;
  std::uint64_t forwarded = 0;
  std::uint64_t upstream_errors = 0;
  // Requests dropped because their client had given up before they were
  // forwarded; answers that came after late_ms; the slowest answer.
  std::uint64_t abandoned = 0;
  std::uint64_t late = 0;
  std::uint64_t slowest_ms = 0;
  std::uint64_t held = 0;  // requests held by a --hold
  std::map<std::string, std::uint64_t> faults;
  std::map<std::string, std::uint64_t> message_faults;  // refuse, after

  std::uint64_t faults_total() const {
    std::uint64_t total = 0;
    for (const auto& [kind, count] : faults)
      total += count;
    return total;
  }
};

class fault_proxy {
 public:
  explicit fault_proxy(const fault_proxy_options& options) {
    char pattern[] = "/tmp/fault_proxy.XXXXXX";
    if (::mkdtemp(pattern) == nullptr)
      throw std::runtime_error("fault_proxy: mkdtemp failed");
    dir_ = pattern;
    const std::string port_file = dir_ + "/port";
    stats_file_ = dir_ + "/stats.json";
    log_file_ = dir_ + "/proxy.log";

    std::vector<std::string> args{
        python(),
        std::string(WIDGET_CONSUMER_SOURCE_DIR) + "/tests/support/fault_proxy.py",
        "--upstream",
        options.upstream,
        "--listen-port",
        "0",
        "--port-file",
        port_file,
        "--stats-file",
        stats_file_,
        "--stats-interval-ms",
        "200",
        "--seed",
        std::to_string(options.seed),
        "--delay-ms",
        std::to_string(options.delay_ms),
        "--slow-ms",
        std::to_string(options.slow_ms),
        "--late-ms",
        std::to_string(options.late_ms),
        "--parent-pid",
        std::to_string(::getpid()),
        "--verbose"};
    for (const auto& [kind, rate] : options.faults) {
      std::ostringstream fault;
      fault << kind << '=' << rate;
      args.push_back("--fault");
      args.push_back(fault.str());
    }
    for (const auto& fault : options.message_faults) {
      args.push_back("--message-fault");
      args.push_back(fault);
    }
    for (const auto& hold : options.holds) {
      args.push_back("--hold");
      args.push_back(hold);
    }
    spawn(args);

    const auto deadline = std::chrono::steady_clock::now() + options.start_timeout;
    for (;;) {
      std::ifstream in(port_file);
      if (int port = 0; in >> port && port > 0) {
        endpoint_ = "http://127.0.0.1:" + std::to_string(port);
        break;
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        cleanup();
        throw std::runtime_error("fault_proxy exited before listening: " + log());
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        stop();
        const std::string text = log();
        cleanup();
        throw std::runtime_error("fault_proxy did not listen in time: " + text);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
  }

  fault_proxy(const fault_proxy&) = delete;
  fault_proxy& operator=(const fault_proxy&) = delete;

  ~fault_proxy() {
    stop();
    cleanup();
  }

  // http://127.0.0.1:PORT: the endpoint clients use instead of the server's.
  const std::string& endpoint() const noexcept { return endpoint_; }

  // The latest counts (written every 200 ms, and last on stop()).
  fault_proxy_stats stats() const {
    fault_proxy_stats result;
    std::ifstream in(stats_file_);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    boost::system::error_code ec;
    const auto parsed = boost::json::parse(text, ec);
    if (ec || !parsed.is_object())
      return result;
    const auto& object = parsed.get_object();
    auto number = [&](const char* name) {
      const auto* value = object.if_contains(name);
      return value != nullptr && value->is_int64() ? static_cast<std::uint64_t>(value->as_int64())
                                                   : std::uint64_t{0};
    };
    result.requests = number("requests");
    result.forwarded = number("forwarded");
    result.upstream_errors = number("upstream_errors");
    result.abandoned = number("abandoned");
    result.late = number("late");
    result.slowest_ms = number("slowest_ms");
    result.held = number("held");
    auto counts = [&](const char* name, std::map<std::string, std::uint64_t>& into) {
      if (const auto* found = object.if_contains(name); found && found->is_object())
        for (const auto& [kind, count] : found->get_object())
          if (count.is_int64())
            into[std::string(kind)] = static_cast<std::uint64_t>(count.as_int64());
    };
    counts("faults", result.faults);
    counts("message_faults", result.message_faults);
    return result;
  }

  // Stops the proxy (SIGTERM: it writes its final counts), bounded; then
  // SIGKILL. Idempotent.
  void stop() noexcept {
    if (pid_ <= 0)
      return;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    pid_ = -1;
  }

  // The proxy's stderr (upstream failures with --verbose, tracebacks).
  std::string log() const {
    std::ifstream in(log_file_);
    return {(std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()};
  }

 private:
  static std::string python() {
    const char* venv = std::getenv("WIDGET_CONSUMER_VENV");
    const std::string root = venv != nullptr && *venv != '\0'
                                 ? venv
                                 : std::string(WIDGET_CONSUMER_SOURCE_DIR) + "/.venv";
    return root + "/bin/python";
  }

  void spawn(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const auto& arg : args)
      argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    // posix_spawn, not fork: the test process has threads.
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_file_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    const int error = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) {
      pid_ = -1;
      cleanup();
      throw std::runtime_error("fault_proxy: cannot start " + args[0] + ": " +
                               std::to_string(error));
    }
  }

  void cleanup() noexcept {
    std::error_code ignored;
    if (!dir_.empty())
      std::filesystem::remove_all(dir_, ignored);
    dir_.clear();
  }

  pid_t pid_ = -1;
  std::string dir_;
  std::string stats_file_;
  std::string log_file_;
  std::string endpoint_;
};

}  // namespace widget_consumer::testing
