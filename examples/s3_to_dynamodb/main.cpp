// s3_to_dynamodb: consumes widget requests from an S3 bucket and applies them to a DynamoDB table.
// One compile-time combination: consumer<s3_bucket_source, dynamodb_table_store>.

#include "common/consumer_program.hpp"

int main(int argc, char* argv[]) {
  return examples::fixed_combination_main<widget_consumer::s3_bucket_source,
                                          widget_consumer::dynamodb_table_store>(argc, argv,
                                                                                 "s3_to_dynamodb");
}
