#pragma once
// How a consumer tells that the owner of a claim (or member object) was a
// process of its own machine that is gone, so that its partitions need not
// wait out their lifetime (detail/s3_partition_claims.hpp).
//
// The body of a claim names the writer's node (the kernel's boot id and pid
// namespace) and pid. These alone are not enough: VM clones restored from
// one snapshot share a boot id, every host's first pid namespace has the
// same inode number, and containers share their host's boot id. A consumer
// on such a machine writes our node string, and its pid most likely does not
// exist here; taken for dead at once, its live claims would be handed out
// twice (issue 28, section 3). So each consumer also holds an flock on a
// file of its own, /dev/shm/widget_consumer-claim-<owner id>, for as long as
// it lives: the kernel drops the lock when the process ends, SIGKILL
// included. A claim is taken for dead at once only when it names our node,
// its pid is gone, and its owner's file exists here and is not locked.
// Another machine's consumer made no file on our /dev/shm (a tmpfs, local
// and emptied at boot), so its claims wait out their lifetime. Whatever is
// unknown (no /dev/shm, a file we cannot open) reads as alive: the safe side.

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

namespace widget_consumer::detail {

inline constexpr std::string_view claim_marker_folder = "/dev/shm";
inline constexpr std::string_view claim_marker_prefix = "widget_consumer-claim-";

// The marker's path for an owner id (the first 16 characters of the owner
// named in a body); "" unless they are 16 hex digits, so that a body written
// by anyone with access to the bucket cannot name another path.
inline std::string claim_marker_path(std::string_view owner) {
  const auto id = owner.substr(0, 16);
  if (id.size() != 16 || id.find_first_not_of("0123456789abcdef") != std::string_view::npos)
    return {};
  return std::string(claim_marker_folder) + "/" + std::string(claim_marker_prefix) +
         std::string(id);
}

// The lock of this process on its marker, from construction to destruction.
class s3_claim_marker {
 public:
  explicit s3_claim_marker(std::string_view owner) : path_(claim_marker_path(owner)) {
    if (path_.empty())
      return;
    // Readable by all: a consumer of another user may test the lock too.
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  s3_claim_marker(const s3_claim_marker&) = delete;
  s3_claim_marker& operator=(const s3_claim_marker&) = delete;
  ~s3_claim_marker() {
    if (fd_ < 0)
      return;
    ::unlink(path_.c_str());  // before the lock goes: never seen unlocked
    ::close(fd_);
  }

  // False without /dev/shm: then our claims are never taken for dead at
  // once (they wait out their lifetime), and we take no other's at once.
  bool held() const noexcept { return fd_ >= 0; }

  // At each heartbeat: a marker unlocked and untouched for a lifetime is
  // only litter (its owner's claims have expired), and may be swept.
  void touch() const noexcept {
    if (fd_ >= 0)
      (void)::futimens(fd_, nullptr);
  }

 private:
  std::string path_;
  int fd_ = -1;
};

namespace claim_marker_detail {
// True when the file at `path` exists and its owner holds no lock on it
// (a shared lock: checkers at once do not see each other as the owner).
inline bool unlocked(const std::string& path, struct stat* status = nullptr) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return false;
  const bool free = ::flock(fd, LOCK_SH | LOCK_NB) == 0 && (!status || ::fstat(fd, status) == 0);
  ::close(fd);
  return free;
}
}  // namespace claim_marker_detail

// Removes the markers of consumers that died more than `older_than` ago
// (unlocked, untouched since). At most `limit` entries are looked at.
inline void sweep_claim_markers(std::chrono::milliseconds older_than, std::size_t limit = 1000) {
  std::error_code error;
  std::filesystem::directory_iterator entries(std::string(claim_marker_folder), error);
  const auto now = std::time(nullptr);
  for (std::size_t seen = 0;
       !error && entries != std::filesystem::directory_iterator() && seen < limit;
       entries.increment(error), ++seen) {
    const std::string name = entries->path().filename().string();
    if (!name.starts_with(claim_marker_prefix))
      continue;
    struct stat status {};
    const std::string path = entries->path().string();
    if (claim_marker_detail::unlocked(path, &status) &&
        std::chrono::seconds(now - status.st_mtime) > older_than)
      ::unlink(path.c_str());
  }
}

// Where this process runs, as far as pids go: the kernel's boot id and the
// pid namespace. Two processes with the same node may see the same pids,
// and with the marker above one can tell whether the other still exists;
// "" when either is unknown (then no owner is ever judged gone from here).
inline std::string claim_node() {
  std::string boot;
  std::ifstream file("/proc/sys/kernel/random/boot_id");
  std::getline(file, boot);
  char ns[128] = {};
  const ssize_t length = readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
  if (boot.empty() || length <= 0)
    return {};
  return boot + " " + std::string(ns, static_cast<std::size_t>(length));
}

// True when a claim's owner ran on `node` (ours, known) as `pid`, no process
// has that pid any more, and its marker is here and unlocked: it died
// without giving its claims back, and they need not wait out their
// lifetime. A pid used again by another process reads as alive, and so
// does an owner with no marker here (another machine): the claim waits.
inline bool claim_owner_gone(const std::string& our_node, std::string_view owner,
                             std::string_view node, std::string_view pid) {
  if (our_node.empty() || node != our_node || pid.empty() || pid.size() > 9)
    return false;
  pid_t number = 0;
  for (const char c : pid) {
    if (c < '0' || c > '9')
      return false;
    number = number * 10 + (c - '0');
  }
  if (number <= 0 || number == getpid())
    return false;
  if (kill(number, 0) != -1 || errno != ESRCH)
    return false;
  const std::string marker = claim_marker_path(owner);
  return !marker.empty() && claim_marker_detail::unlocked(marker);
}

}  // namespace widget_consumer::detail
