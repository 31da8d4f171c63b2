#pragma once
// directory_store: one JSON document per widget at {root}/{widget_key(...)}, the
// layout of the S3 store on a local disk. Writes are atomic (a hidden
// temporary, fsync, rename), so a reader or a crash never sees half a widget.

#include <widget_consumer/concepts.hpp>
#include <widget_consumer/destination/detail/widget_document.hpp>
#include <widget_consumer/request.hpp>
#include <widget_consumer/widget.hpp>

#include <fcntl.h>
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

class directory_store {
 public:
  explicit directory_store(std::filesystem::path root, widget_key_layout layout = {})
      : root_(std::move(root)), layout_(std::move(layout)) {
    std::filesystem::create_directories(root_);
  }

  // Safe from several threads for different widgets (what the consumer does).
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

  // The stored widget, if any.
  std::optional<widget> load(std::string_view owner, std::string_view widget_id) const {
    return read(path_of(owner, widget_id));
  }

  // {root}/{key}; refuses a key that would leave root ("..", an absolute
  // path, a NUL): widgetId comes from the request, so it is untrusted.
  std::filesystem::path path_of(std::string_view owner, std::string_view widget_id) const {
    const std::string key = widget_key(owner, widget_id, layout_);
    const std::filesystem::path relative(key);
    bool safe = !key.empty() && key.find('\0') == std::string::npos && relative.is_relative() &&
                key.back() != '/';
    for (const auto& part : relative)
      safe = safe && part != ".." && part != ".";
    if (!safe)
      throw store_error(store_failure::bad_request,
                        "widget key \"" + key + "\" would leave the store folder");
    return root_ / relative;
  }

  const std::filesystem::path& root() const noexcept { return root_; }

 private:
  static std::optional<widget> read(const std::filesystem::path& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
      std::error_code error;
      if (std::filesystem::exists(path, error) || error)
        throw store_error(store_failure::permanent, "cannot open " + path.string());
      return std::nullopt;
    }
    const std::string document{std::istreambuf_iterator<char>(file),
                               std::istreambuf_iterator<char>()};
    if (file.bad())
      throw store_error(store_failure::transient, "cannot read " + path.string());
    try {
      return widget_from_json(document);
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
  std::atomic<std::uint64_t> next_temporary_{0};
};

}  // namespace widget_consumer
