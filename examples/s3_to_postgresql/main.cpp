// s3_to_postgresql: consumes widget requests from an S3 bucket and applies them to a PostgreSQL
// database. One compile-time combination: consumer<s3_bucket_source, postgresql_table_store>.

#include "common/consumer_program.hpp"

int main(int argc, char* argv[]) {
  return examples::fixed_combination_main<widget_consumer::s3_bucket_source,
                                          widget_consumer::postgresql_table_store>(
      argc, argv, "s3_to_postgresql");
}
