#include "widget_consumer/aws/credential_process.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

// How long a credential_process run may take: its timeout bounds the whole
// run, the wait for the helper's exit included, however the helper behaves
// once it has written its answer. The helpers here are shell lines; each
// writes the pid of what it leaves behind to a file, so that the test can
// check it was stopped, or stop it itself.

namespace {

using namespace widget_consumer::aws;
using namespace std::chrono_literals;
using testing::HasSubstr;
namespace fs = std::filesystem;

const std::string answer =
    R"({"Version": 1, "AccessKeyId": "AKIDPROCESS", "SecretAccessKey": "s3cr3t"})";

class credential_process_test : public testing::Test {
 protected:
  void TearDown() override {
    // Whatever a helper left running is stopped by its pid: the test's own
    // process only.
    if (const pid_t pid = read_pid(pid_file_); pid > 0 && !ended(pid))
      ::kill(pid, SIGKILL);
    std::error_code ignored;
    fs::remove_all(folder_, ignored);
  }

  static pid_t read_pid(const fs::path& file) {
    pid_t pid = 0;
    std::ifstream(file) >> pid;
    return pid;
  }

  // True once `pid` has ended: no such process, or a zombie left to be reaped.
  static bool ended(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    std::getline(stat, text);
    const auto end_of_name = text.rfind(')');
    return !stat || end_of_name == std::string::npos || text.substr(end_of_name + 2, 1) == "Z";
  }

  static bool ends_within(pid_t pid, std::chrono::milliseconds bound) {
    for (auto waited = 0ms; waited < bound && !ended(pid); waited += 10ms)
      std::this_thread::sleep_for(10ms);
    return ended(pid);
  }

  fs::path folder_ = [] {
    auto path = fs::temp_directory_path() /
                ("widget_consumer_credential_process_test_" + std::to_string(::getpid()));
    fs::create_directories(path);
    return path;
  }();
  fs::path pid_file_ = folder_ / "left.pid";
  std::string quoted_pid_file_ = "'" + pid_file_.string() + "'";
};

// Issue 28, F3: the helper prints its answer and closes its standard output,
// then goes on (here: waits for a child that sleeps 20 s). Reading ends at
// once; the wait for its exit must end at the timeout too, the group killed.
TEST_F(credential_process_test, a_helper_that_lingers_after_its_answer_is_stopped_at_the_timeout) {
  const std::string command =
      "printf '%s' '" + answer + "'; exec >&-; sleep 20 & echo $! > " + quoted_pid_file_ + "; wait";
  const auto start = std::chrono::steady_clock::now();
  std::string error;
  try {
    run_credential_process(command, "lingering helper", {.timeout = 2s});
  } catch (const credentials_error& thrown) {
    error = thrown.what();
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_THAT(error, HasSubstr("lingering helper: did not finish within 2000 ms"));
  EXPECT_LT(took, 2s + 3s) << "the 2 s timeout lasted "
                           << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                           << " ms";
  const pid_t left = read_pid(pid_file_);
  ASSERT_GT(left, 0) << "the helper did not start its child";
  EXPECT_TRUE(ends_within(left, 2s)) << "the helper's child (pid " << left << ") still runs";
}

// The helper answers and exits, but leaves a child that holds the pipe of its
// standard output open. Its answer is complete: the call neither waits for
// the child nor for the timeout (10 s here) to use it.
TEST_F(credential_process_test, a_child_left_holding_the_output_does_not_hold_the_call) {
  const std::string command =
      "sleep 20 & echo $! > " + quoted_pid_file_ + "; printf '%s' '" + answer + "'";
  const auto start = std::chrono::steady_clock::now();
  std::string error;
  credentials found;
  try {
    found = run_credential_process(command, "helper with a child", {.timeout = 10s});
  } catch (const credentials_error& thrown) {
    error = thrown.what();
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(error, "");
  EXPECT_EQ(found.access_key_id, "AKIDPROCESS");
  EXPECT_LT(took, 5s) << "the call took "
                      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                      << " ms of its 10 s timeout";
  EXPECT_GT(read_pid(pid_file_), 0) << "the helper did not start its child";
}

// A helper that neither answers nor exits, and whose child holds the output
// open: both are stopped at the timeout, as before.
TEST_F(credential_process_test, a_helper_that_never_answers_is_stopped_with_its_children) {
  const std::string command = "sleep 20 & echo $! > " + quoted_pid_file_ + "; wait";
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(run_credential_process(command, "silent helper", {.timeout = 300ms}),
               credentials_error);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 300ms + 3s);
  const pid_t left = read_pid(pid_file_);
  ASSERT_GT(left, 0);
  EXPECT_TRUE(ends_within(left, 2s)) << "the helper's child (pid " << left << ") still runs";
}

// A helper that exits promptly is used as it was: its exit status counts.
TEST_F(credential_process_test, a_prompt_helper_answers_and_its_status_counts) {
  EXPECT_EQ(run_credential_process("printf '%s' '" + answer + "'", "helper").access_key_id,
            "AKIDPROCESS");
  EXPECT_THAT(
      [&] {
        try {
          run_credential_process("printf '%s' '" + answer + "'; exit 4", "helper");
        } catch (const credentials_error& thrown) {
          return std::string(thrown.what());
        }
        return std::string{};
      }(),
      HasSubstr("exited with status 4"));
}

}  // namespace
