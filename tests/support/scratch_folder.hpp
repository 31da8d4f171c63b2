#pragma once

// A fresh folder under the system's temporary folder for one test, removed
// with everything in it when the test ends.

#include <filesystem>
#include <random>
#include <string>
#include <system_error>

namespace widget_consumer::testing {

class scratch_folder {
 public:
  explicit scratch_folder(const std::string& prefix = "widget_consumer_test_") {
    path_ =
        std::filesystem::temp_directory_path() / (prefix + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(path_);
  }
  scratch_folder(const scratch_folder&) = delete;
  scratch_folder& operator=(const scratch_folder&) = delete;
  ~scratch_folder() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace widget_consumer::testing
