#pragma once
// Whether an S3 server honours conditional writes, asked with a harmless
// probe object: S3 does, moto does, s3rver ignores If-Match and
// If-None-Match. The S3 source's claims (source/detail/s3_conditional_writes.hpp)
// and the fenced S3 store (destination/s3_bucket.hpp) refuse to start on a
// server that does not, each naming the option that does without.

#include <widget_consumer/aws/s3.hpp>

#include <string>
#include <string_view>

namespace widget_consumer::aws {

/// What the server let through that it must refuse, or "". Writes `key` three
/// times and deletes it: a key no one else uses (callers name it after
/// themselves), so that probes starting together do not meet.
inline std::string probe_conditional_writes(s3_client& client, std::string_view bucket,
                                            std::string_view key) {
  // Refused on a new key: unless the refusal answered a retry of an attempt
  // that was stored but whose answer was lost (a reset connection), when
  // the key holds the probe already.
  const bool first =
      client.put_object_if(bucket, key, "probe", {.if_match = {}, .if_none_match = true})
          .has_value() ||
      client.get_object(bucket, key) == "probe";
  std::string failure;
  if (!first) {
    failure = "a PutObject with If-None-Match: * on a new key was refused";
  } else if (client.put_object_if(bucket, key, "probe 2",
                                  {.if_match = {}, .if_none_match = true})) {
    failure = "a second PutObject with If-None-Match: * on one key succeeded";
  } else if (client.put_object_if(bucket, key, "probe 3",
                                  {.if_match = "\"0\"", .if_none_match = false})) {
    failure = "a PutObject with If-Match on a stale ETag succeeded";
  }
  client.delete_object(bucket, key);
  return failure;
}

}  // namespace widget_consumer::aws
