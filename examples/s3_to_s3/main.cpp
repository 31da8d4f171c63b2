// s3_to_s3: consumes widget requests from an S3 bucket and applies them to an S3 bucket.
// One compile-time combination: consumer<s3_bucket_source, s3_bucket_store>.

#include "common/consumer_program.hpp"

int main(int argc, char* argv[]) {
  return examples::fixed_combination_main<widget_consumer::s3_bucket_source,
                                          widget_consumer::s3_bucket_store>(argc, argv, "s3_to_s3");
}
