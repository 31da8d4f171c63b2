#pragma once
// A profile's credential_process, run the way the AWS SDKs' process provider
// runs it: the setting is a command line for the shell (/bin/sh -c), its
// standard output is a JSON document of Version 1 (AccessKeyId,
// SecretAccessKey, optional SessionToken and Expiration), its standard error
// goes where ours goes, so the user sees the helper's own messages.
//
// The output is a secret: no message quotes it, only says what is wrong with
// it. The timeout bounds the whole run, the wait for the exit included: a
// helper that has not exited by then, even one that has answered and closed
// its output, is killed, and its answer is not used (only the exit status
// says it is good). One that writes more than max_output bytes is not read
// further. The shell runs in a process group of its own, so that the kill
// reaches the helper it started and whatever that started: killing the
// shell alone would leave them running, holding our standard error open.
// (A helper therefore cannot read the terminal; none can be answered by a
// consumer anyway.) A child that the helper leaves behind when it exits is
// not waited for, even if it holds the output open, and is left alone.

#include <widget_consumer/aws/credentials.hpp>

#include <boost/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

extern char** environ;

namespace widget_consumer::aws {

/// Limits on a credential_process command run from a profile.
struct credential_process_options {
  /// The command is killed after this long.
  std::chrono::milliseconds timeout = std::chrono::seconds{60};
  std::size_t max_output = 64 * 1024;  ///< bytes of output read before giving up
};

namespace detail {

struct process_output {
  std::string text;
  int exit_status = 0;  // the exit code, or 128 + the signal that ended it
};

// Closes a file descriptor once, whichever way the scope is left.
struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0)
      ::close(fd);
  }
};

// How long the output is still read once the helper has exited: a child it
// left behind may hold the pipe open for good, and the helper's answer is
// complete when it exits.
inline constexpr std::chrono::milliseconds output_after_exit{250};

// A file descriptor that becomes readable when `pid` ends (Linux 5.3+), or -1:
// then the wait for the exit polls.
inline int open_exit_notice(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  static_cast<void>(pid);
  return -1;
#endif
}

// True once `pid` has exited. The exit is only observed, not reaped: the
// zombie keeps the process group's number in use, so that the group can
// still be killed without reaching a process that took the number over.
inline bool has_exited(pid_t pid) {
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0)
    return errno == ECHILD;  // reaped already: the program ignores SIGCHLD
  return info.si_pid == pid;
}

// Reads the helper's standard output until it has exited and the output is
// at end of file, or the deadline. False when it has not exited by the
// deadline. Once it has exited, the output is read for output_after_exit
// more at most (what a child left behind holds open is not waited for).
inline bool read_until_exit(pid_t pid, int fd, std::string& out, std::size_t max,
                            std::chrono::steady_clock::time_point deadline) {
  fd_guard exit_notice{open_exit_notice(pid)};
  bool at_end = false;
  std::optional<std::chrono::steady_clock::time_point> exited_at;
  char buffer[4096];
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (!exited_at && has_exited(pid))
      exited_at = now;
    if (exited_at && (at_end || now >= *exited_at + output_after_exit))
      return true;
    if (now >= deadline)
      return exited_at.has_value();  // it did exit, only the output was not closed
    auto until = deadline;
    if (exited_at)
      until = std::min(until, *exited_at + output_after_exit);
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(until - now);
    if (exit_notice.fd < 0 && !exited_at)
      wait = std::min(wait, std::chrono::milliseconds{10});  // no notice: look again soon
    pollfd ready[2] = {{at_end ? -1 : fd, POLLIN, 0}, {exited_at ? -1 : exit_notice.fd, POLLIN, 0}};
    const int polled = ::poll(ready, 2, static_cast<int>(wait.count()));
    if (polled < 0 && errno != EINTR)
      return false;
    if (polled <= 0 || (ready[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
      continue;
    const auto n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      at_end = true;
      continue;
    }
    if (out.size() < max)
      out.append(buffer, std::min(static_cast<std::size_t>(n), max - out.size()));
  }
}

// /bin/sh -c command, stdout captured, stdin and stderr shared with us. The
// timeout bounds the whole run: reading, and the wait for the exit.
inline process_output run_shell_command(const std::string& command,
                                        const credential_process_options& options) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("cannot create a pipe: ") + std::strerror(errno));
  fd_guard read_end{pipe_fds[0]};
  fd_guard write_end{pipe_fds[1]};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, write_end.fd, STDOUT_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);  // a group of its own, numbered by its pid
  const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
  pid_t pid = 0;
  const int spawned = ::posix_spawn(&pid, "/bin/sh", &actions, &attributes,
                                    const_cast<char* const*>(argv), environ);
  posix_spawnattr_destroy(&attributes);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0)
    throw std::runtime_error(std::string("cannot start /bin/sh: ") + std::strerror(spawned));
  ::close(write_end.fd);
  write_end.fd = -1;
  process_output result;
  const bool finished = read_until_exit(pid, read_end.fd, result.text, options.max_output,
                                        std::chrono::steady_clock::now() + options.timeout);
  if (!finished)
    ::kill(-pid, SIGKILL);  // the whole group: the shell and all it started
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!finished)
    throw std::runtime_error("did not finish within " + std::to_string(options.timeout.count()) +
                             " ms and was stopped");
  result.exit_status =
      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return result;
}

// The document of Version 1; messages say what is wrong, never what is there.
inline credentials parse_process_credentials(const std::string& output) {
  boost::system::error_code error;
  const auto document = boost::json::parse(output, error);
  const auto* object = error ? nullptr : document.if_object();
  if (object == nullptr)
    throw std::runtime_error("its output is not a JSON object");
  const auto* version = object->if_contains("Version");
  if (version == nullptr || !version->is_int64() || version->as_int64() != 1)
    throw std::runtime_error("its output lacks \"Version\": 1");
  auto field = [&](const char* name) {
    const auto* value = object->if_contains(name);
    if (value != nullptr && !value->is_string() && !value->is_null())
      throw std::runtime_error(std::string("its output's ") + name + " is not a string");
    return value != nullptr && value->is_string() ? std::string(value->get_string())
                                                  : std::string{};
  };
  credentials creds{.access_key_id = field("AccessKeyId"),
                    .secret_access_key = field("SecretAccessKey"),
                    .session_token = field("SessionToken"),
                    .expiration = std::nullopt,
                    .source = {}};
  if (creds.empty())
    throw std::runtime_error("its output lacks AccessKeyId or SecretAccessKey");
  if (const auto expiration = field("Expiration"); !expiration.empty()) {
    creds.expiration = parse_iso8601(expiration);
    if (!creds.expiration)
      throw std::runtime_error("its output's Expiration is not an ISO 8601 time");
  }
  return creds;
}

}  // namespace detail

/// Runs `command` and reads its credentials. Throws credentials_error naming
/// `what` ("credential_process of profile 'dev'") and the failure.
inline credentials run_credential_process(const std::string& command, const std::string& what,
                                          const credential_process_options& options = {}) {
  try {
    const auto output = detail::run_shell_command(command, options);
    if (output.exit_status != 0)
      throw std::runtime_error("exited with status " + std::to_string(output.exit_status) +
                               " (its standard error, if any, is above)");
    auto creds = detail::parse_process_credentials(output.text);
    creds.source = what;
    return creds;
  } catch (const std::runtime_error& error) {
    throw credentials_error(what + ": " + error.what());
  }
}

}  // namespace widget_consumer::aws
