#include <widget_consumer/source/detail/s3_claim_liveness.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <string>

#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

// When a claim's owner is taken for dead at once (issue 28, section 3): only
// when it names our node, its pid is gone, and its marker in /dev/shm is here
// and unlocked. Children stand for other consumers of this machine.

namespace widget_consumer::detail {
namespace {

using namespace std::chrono_literals;

std::string random_owner() {
  std::random_device random;
  constexpr char digits[] = "0123456789abcdef";
  std::string id(16, '0');
  for (auto& c : id)
    c = digits[random() % 16];
  return id + " test/" + std::to_string(getpid());
}

// A child that holds its marker until it is killed; and it is reaped.
struct marker_child {
  pid_t pid = -1;
  explicit marker_child(const std::string& owner) {
    int ready[2];
    if (pipe(ready) != 0)
      return;
    pid = fork();
    if (pid == 0) {
      s3_claim_marker marker(owner);
      const char held = marker.held() ? 'y' : 'n';
      (void)!write(ready[1], &held, 1);
      for (int i = 0; i < 600; ++i)  // bounded: 60 s
        usleep(100000);
      _exit(0);  // no destructor: the file stays, as after SIGKILL
    }
    char held = 'n';
    (void)!read(ready[0], &held, 1);
    close(ready[0]);
    close(ready[1]);
    if (held != 'y') {
      kill_and_reap();
      pid = -1;
    }
  }
  void kill_and_reap() {
    if (pid <= 0)
      return;
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  ~marker_child() { kill_and_reap(); }
};

// A pid no process has: a child reaped.
pid_t pid_gone() {
  const pid_t pid = fork();
  if (pid == 0)
    _exit(0);
  waitpid(pid, nullptr, 0);
  return pid;
}

TEST(s3_claim_liveness, a_dead_consumer_of_this_machine_is_gone_at_once) {
  const std::string node = claim_node();
  ASSERT_FALSE(node.empty());
  const std::string owner = random_owner();
  marker_child child(owner);
  ASSERT_GT(child.pid, 0) << "no marker could be made in /dev/shm";
  const std::string pid = std::to_string(child.pid);
  EXPECT_FALSE(claim_owner_gone(node, owner, node, pid));  // alive
  child.kill_and_reap();                                   // as by SIGKILL
  EXPECT_TRUE(claim_owner_gone(node, owner, node, pid));
  EXPECT_TRUE(std::filesystem::exists(claim_marker_path(owner)));
  std::filesystem::remove(claim_marker_path(owner));
}

// Another machine with our boot id and pid namespace (a VM clone): its
// pid does not exist here, and it has no marker here.
TEST(s3_claim_liveness, an_owner_with_our_node_and_no_marker_here_is_not_gone) {
  const std::string node = claim_node();
  const std::string pid = std::to_string(pid_gone());
  EXPECT_FALSE(claim_owner_gone(node, random_owner(), node, pid));
}

// The lock decides, whatever the pid says: a marker held by a live process
// is not gone even when the claim names a pid that does not exist.
TEST(s3_claim_liveness, a_marker_locked_by_a_live_process_is_not_gone) {
  const std::string node = claim_node();
  const std::string owner = random_owner();
  marker_child child(owner);
  ASSERT_GT(child.pid, 0);
  EXPECT_FALSE(claim_owner_gone(node, owner, node, std::to_string(pid_gone())));
  child.kill_and_reap();
  std::filesystem::remove(claim_marker_path(owner));
}

TEST(s3_claim_liveness, an_owner_id_that_is_not_sixteen_hex_digits_names_no_file) {
  EXPECT_EQ(claim_marker_path("../../../etc/passwd"), "");
  EXPECT_EQ(claim_marker_path("0123456789ABCDEF"), "");
  EXPECT_EQ(claim_marker_path("0123456789abcde"), "");
  EXPECT_EQ(claim_marker_path("0123456789abcdef host/1"),
            "/dev/shm/widget_consumer-claim-0123456789abcdef");
  const std::string node = claim_node();
  EXPECT_FALSE(claim_owner_gone(node, "../../etc/passwd", node, std::to_string(pid_gone())));
  EXPECT_FALSE(claim_owner_gone("", random_owner(), "", std::to_string(pid_gone())));
}

TEST(s3_claim_liveness, a_marker_is_removed_when_its_process_ends_and_swept_once_stale) {
  const std::string owner = random_owner();
  {
    const s3_claim_marker marker(owner);
    ASSERT_TRUE(marker.held());
    EXPECT_TRUE(std::filesystem::exists(claim_marker_path(owner)));
    sweep_claim_markers(0ms);  // locked: kept
    EXPECT_TRUE(std::filesystem::exists(claim_marker_path(owner)));
  }
  EXPECT_FALSE(std::filesystem::exists(claim_marker_path(owner)));

  const std::string dead = random_owner();
  {
    marker_child child(dead);
    ASSERT_GT(child.pid, 0);
  }
  const std::string path = claim_marker_path(dead);
  ASSERT_TRUE(std::filesystem::exists(path));
  sweep_claim_markers(1h);  // unlocked, but touched within the hour
  EXPECT_TRUE(std::filesystem::exists(path));
  const struct timeval old[2] = {{.tv_sec = 1, .tv_usec = 0}, {.tv_sec = 1, .tv_usec = 0}};
  ASSERT_EQ(utimes(path.c_str(), old), 0);
  sweep_claim_markers(1h);
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace widget_consumer::detail
