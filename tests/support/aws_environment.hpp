#pragma once
// Isolates a test from the machine's AWS configuration: every variable the
// AWS layer reads is cleared for the test's lifetime and restored after it,
// and HOME is an empty temporary folder (with .aws/), so neither the
// developer's ~/.aws nor a CI's AWS_* variables leak in. IMDS is disabled, so
// no test reaches beyond loopback unless it points IMDS at a server of its own.

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace widget_consumer::testing {

class isolated_aws_environment {
 public:
  explicit isolated_aws_environment(const std::string& name) {
    for (const char* variable : variables) {
      if (const char* value = std::getenv(variable))
        saved_[variable] = value;
      ::unsetenv(variable);
    }
    home_ = std::filesystem::temp_directory_path() /
            ("widget_consumer_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::create_directories(home_ / ".aws");
    set("HOME", home_.string());
    set("AWS_EC2_METADATA_DISABLED", "true");
  }

  isolated_aws_environment(const isolated_aws_environment&) = delete;
  isolated_aws_environment& operator=(const isolated_aws_environment&) = delete;

  ~isolated_aws_environment() {
    std::error_code ignored;
    std::filesystem::remove_all(home_, ignored);
    for (const char* variable : variables) {
      if (auto it = saved_.find(variable); it != saved_.end())
        ::setenv(variable, it->second.c_str(), 1);
      else
        ::unsetenv(variable);
    }
  }

  static void set(const char* variable, const std::string& value) {
    ::setenv(variable, value.c_str(), 1);
  }

  const std::filesystem::path& home() const noexcept { return home_; }

  // Writes ~/.aws/<file> ("config", "credentials").
  void write_aws_file(const std::string& file, const std::string& text) const {
    std::ofstream(home_ / ".aws" / file) << text;
  }

 private:
  static constexpr const char* variables[] = {"HOME",
                                              "AWS_PROFILE",
                                              "AWS_REGION",
                                              "AWS_DEFAULT_REGION",
                                              "AWS_ACCESS_KEY_ID",
                                              "AWS_SECRET_ACCESS_KEY",
                                              "AWS_SESSION_TOKEN",
                                              "AWS_CONFIG_FILE",
                                              "AWS_SHARED_CREDENTIALS_FILE",
                                              "AWS_ENDPOINT_URL",
                                              "AWS_ENDPOINT_URL_S3",
                                              "AWS_ENDPOINT_URL_SQS",
                                              "AWS_ENDPOINT_URL_DYNAMODB",
                                              "AWS_ENDPOINT_URL_STS",
                                              "AWS_ENDPOINT_URL_SSO",
                                              "AWS_WEB_IDENTITY_TOKEN_FILE",
                                              "AWS_ROLE_ARN",
                                              "AWS_ROLE_SESSION_NAME",
                                              "AWS_MAX_ATTEMPTS",
                                              "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                              "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                                              "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                                              "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                                              "AWS_EC2_METADATA_DISABLED",
                                              "AWS_EC2_METADATA_SERVICE_ENDPOINT"};

  std::filesystem::path home_;
  std::map<std::string, std::string> saved_;
};

}  // namespace widget_consumer::testing
