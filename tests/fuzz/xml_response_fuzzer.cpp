// libFuzzer target for the readers of S3's XML answers (ListObjectsV2,
// DeleteObjects, CopyObject) and for parse_service_error on XML error
// bodies: no crash, no sanitizer report, no exception other than the two
// response.hpp promises, and the invariants of a successful read.
#include "widget_consumer/aws/s3.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

void require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

// Runs one reader: a value, a retryable malformed transport_error, or a
// service_error that names the operation; nothing else.
template <class Read>
void read_one(const char* prefix, Read read) {
  try {
    read();
  } catch (const widget_consumer::aws::transport_error& e) {
    require(e.failure() == widget_consumer::aws::transport_error::kind::malformed,
            "only a malformed transport_error");
    require(e.retryable(), "malformed is retryable");
    require(std::string(e.what()).starts_with(prefix), "transport_error names the operation");
  } catch (const widget_consumer::aws::service_error& e) {
    require(!e.code().empty(), "service_error has a code");
    require(std::string(e.what()).starts_with(prefix), "service_error names the operation");
    require(e.code() != "UnexpectedResponse" || !e.retryable(), "unexpected is not retried");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace aws = widget_consumer::aws;
  aws::http_response response;
  response.status = 200;
  response.body.assign(reinterpret_cast<const char*>(data), size);

  read_one("S3 ListObjectsV2 s3://b: ", [&] {
    const auto list =
        aws::detail::s3_read_list_objects_v2({"s3", "ListObjectsV2", "s3://b", response});
    for (const auto& key : list.keys)
      require(!key.empty(), "listed keys are non-empty");
  });
  read_one("S3 DeleteObjects s3://b: ", [&] {
    (void)aws::detail::s3_read_delete_result({"s3", "DeleteObjects", "s3://b", response});
  });
  read_one("S3 CopyObject s3://b/k: ", [&] {
    aws::detail::s3_read_copy_result({"s3", "CopyObject", "s3://b/k", response});
  });

  for (const long status : {404L, 503L}) {
    response.status = status;
    const auto error = aws::parse_service_error("s3", "GetObject", "s3://b/k", response);
    require(!error.code().empty(), "an error always has a code");
    require(std::string(error.what())
                .starts_with("S3 GetObject s3://b/k: " + std::to_string(status) + " "),
            "an error names operation and status");
    require(status != 503 || error.retryable(), "a 503 is retryable");
  }
  return 0;
}
