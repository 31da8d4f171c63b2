// sqs_to_s3: consumes widget requests from an SQS queue and applies them to an S3 bucket.
// One compile-time combination: consumer<sqs_queue_source, s3_bucket_store>.

#include "common/consumer_program.hpp"

int main(int argc, char* argv[]) {
  return examples::fixed_combination_main<widget_consumer::sqs_queue_source,
                                          widget_consumer::s3_bucket_store>(argc, argv,
                                                                            "sqs_to_s3");
}
