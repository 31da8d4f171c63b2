#pragma once
// directory_store: one JSON document per widget at {root}/{widget_key(...)}, the
// layout of the S3 store on a local disk. Writes are atomic (a hidden
// temporary, fsync, rename), so a reader or a crash never sees half a widget.
//
// Fencing (position.hpp): each widget's position is a file of its own at
// {root}/.positions/{widget_key(...)}, written after the widget, under an
// flock of {that}.lock held from the check to the write, so processes sharing
// the folder are fenced too. A deleted widget's position file stays: it is
// the tombstone, kept for good (a local folder has no lifecycle). A crash
// between the widget's write and its position's leaves the old position: the
// request delivered again is applied again, to the same result.

#include <widget_consumer/concepts.hpp>
#include <widget_consumer/destination/detail/widget_document.hpp>
#include <widget_consumer/destination/fencing.hpp>
#include <widget_consumer/position.hpp>
#include <widget_consumer/request.hpp>
#include <widget_consumer/widget.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace widget_consumer {

/// A widget store of JSON files in a folder, one per widget: for tests and local runs.
class directory_store {
 public:
  /// A store under `root` (created if missing), its files named as `layout` says.
  explicit directory_store(std::filesystem::path root, widget_key_layout layout = {},
                           fencing_options fencing = {})
      : root_(std::move(root)), layout_(std::move(layout)), fencing_(fencing) {
    std::filesystem::create_directories(root_);
  }

  /// Fenced (concepts.hpp, position_fencing): applied only if position is
  /// newer than the widget's stored one.
  fenced_outcome apply(const widget_request& request, std::string_view position) {
    if (!fencing_.enabled || position.empty())
      return {apply(request)};
    const std::filesystem::path path = path_of(request.owner, request.widget_id);
    const std::filesystem::path position_path =
        root_ / positions_folder / path.lexically_relative(root_);
    const widget_lock lock(position_path.string() + ".lock");
    std::string stored = read_text(position_path).value_or(std::string{});
    if (!moves_forward(position, stored))
      return {apply_outcome::stale, std::move(stored)};
    const apply_outcome outcome = apply(request);
    if (outcome == apply_outcome::applied)
      write_atomically(position_path, std::string(position));
    return {outcome};
  }

  /// Safe from several threads for different widgets (what the consumer does).
  apply_outcome apply(const widget_request& request) {
    const std::filesystem::path path = path_of(request.owner, request.widget_id);
    switch (request.type) {
      case request_type::create:
        write_atomically(path, to_json(make_widget(request)));
        return apply_outcome::applied;
      case request_type::update: {
        std::optional<widget> stored = read(path);
        if (!stored || stored->owner != request.owner)
          return apply_outcome::not_found;
        apply_update(*stored, request);
        write_atomically(path, to_json(*stored));
        return apply_outcome::applied;
      }
      case request_type::remove: {
        // The key folds the owner's case (or leaves it out), so the stored
        // owner decides, as for update.
        const std::optional<widget> stored = read(path);
        if (!stored || stored->owner != request.owner)
          return apply_outcome::not_found;
        std::error_code error;
        const bool removed = std::filesystem::remove(path, error);
        if (error)
          throw store_error(store_failure::permanent,
                            "cannot delete " + path.string() + ": " + error.message());
        return removed ? apply_outcome::applied : apply_outcome::not_found;
      }
    }
    throw store_error(store_failure::bad_request, "unknown request type");
  }

  /// The stored widget, if any.
  std::optional<widget> load(std::string_view owner, std::string_view widget_id) const {
    return read(path_of(owner, widget_id));
  }

  /// {root}/{key}; refuses a key that would leave root ("..", an absolute
  /// path, a NUL): widgetId comes from the request, so it is untrusted.
  std::filesystem::path path_of(std::string_view owner, std::string_view widget_id) const {
    const std::string key = widget_key(owner, widget_id, layout_);
    const std::filesystem::path relative(key);
    bool safe = !key.empty() && key.find('\0') == std::string::npos && relative.is_relative() &&
                key.back() != '/';
    for (const auto& part : relative)
      safe = safe && part != ".." && part != ".";
    // The fence's own folder is not a widget's.
    safe = safe && *relative.begin() != positions_folder;
    if (!safe)
      throw store_error(store_failure::bad_request,
                        "widget key \"" + key + "\" would leave the store folder");
    return root_ / relative;
  }

  /// The folder the widgets are written under.
  const std::filesystem::path& root() const noexcept { return root_; }

  /// Under root: one position file per widget key (see the top of this file).
  static constexpr std::string_view positions_folder = ".positions";

 private:
  // An exclusive flock on a lock file of the widget's, for as long as it
  // lives: the lock ends with the descriptor, even if the process dies.
  class widget_lock {
   public:
    explicit widget_lock(const std::string& path) {
      std::error_code error;
      std::filesystem::create_directories(std::filesystem::path(path).parent_path(), error);
      fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd_ < 0)
        fail("cannot open the lock", path, std::error_code(errno, std::generic_category()));
      while (::flock(fd_, LOCK_EX) != 0) {
        if (errno != EINTR) {
          const std::error_code lock_error(errno, std::generic_category());
          ::close(fd_);
          fail("cannot lock", path, lock_error);
        }
      }
    }
    widget_lock(const widget_lock&) = delete;
    widget_lock& operator=(const widget_lock&) = delete;
    ~widget_lock() { ::close(fd_); }

   private:
    int fd_ = -1;
  };

  // The file's bytes; nullopt when it does not exist.
  static std::optional<std::string> read_text(const std::filesystem::path& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
      std::error_code error;
      if (std::filesystem::exists(path, error) || error)
        throw store_error(store_failure::permanent, "cannot open " + path.string());
      return std::nullopt;
    }
    std::string text{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
    if (file.bad())
      throw store_error(store_failure::transient, "cannot read " + path.string());
    return text;
  }

  static std::optional<widget> read(const std::filesystem::path& path) {
    const std::optional<std::string> document = read_text(path);
    if (!document)
      return std::nullopt;
    try {
      return widget_from_json(*document);
    } catch (const std::exception& e) {
      throw store_error(store_failure::permanent, path.string() + ": " + e.what());
    }
  }

  void write_atomically(const std::filesystem::path& path, const std::string& document) {
    std::error_code error;
    std::filesystem::create_directories(path.parent_path(), error);
    if (error)
      fail("cannot create the folder of", path, error);
    // Unique per write: two threads never write the same widget, but a
    // widgetId may look like another widget's temporary.
    const std::filesystem::path temporary =
        path.parent_path() /
        ("." + path.filename().string() + ".tmp" + std::to_string(next_temporary_.fetch_add(1)));
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
      fail("cannot create", temporary, std::error_code(errno, std::generic_category()));
    std::size_t written = 0;
    while (written < document.size()) {
      const ssize_t n = ::write(fd, document.data() + written, document.size() - written);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0) {
        const std::error_code write_error(errno, std::generic_category());
        ::close(fd);
        std::filesystem::remove(temporary, error);
        fail("cannot write", temporary, write_error);
      }
      written += static_cast<std::size_t>(n);
    }
    // Durable before it is visible: the consumer acks right after this.
    const bool synced = ::fsync(fd) == 0;
    const std::error_code sync_error(synced ? 0 : errno, std::generic_category());
    ::close(fd);
    if (!synced) {
      std::filesystem::remove(temporary, error);
      fail("cannot sync", temporary, sync_error);
    }
    std::error_code rename_error;
    std::filesystem::rename(temporary, path, rename_error);
    if (rename_error) {
      std::filesystem::remove(temporary, error);
      fail("cannot rename onto", path, rename_error);
    }
  }

  [[noreturn]] static void fail(std::string_view what, const std::filesystem::path& path,
                                const std::error_code& error) {
    throw store_error(store_failure::permanent,
                      std::string(what) + " " + path.string() + ": " + error.message());
  }

  std::filesystem::path root_;
  widget_key_layout layout_;
  fencing_options fencing_;
  std::atomic<std::uint64_t> next_temporary_{0};
};

}  // namespace widget_consumer
