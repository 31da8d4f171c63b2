// sqs_to_dynamodb: consumes widget requests from an SQS queue and applies them to a DynamoDB table.
// One compile-time combination: consumer<sqs_queue_source, dynamodb_table_store>.

#include "common/consumer_program.hpp"

int main(int argc, char* argv[]) {
  return examples::fixed_combination_main<widget_consumer::sqs_queue_source,
                                          widget_consumer::dynamodb_table_store>(argc, argv,
                                                                                 "sqs_to_dynamodb");
}
