#pragma once
// Umbrella header: everything a program needs to run a consumer.

#include <widget_consumer/request.hpp>
#include <widget_consumer/widget.hpp>

#include <widget_consumer/concepts.hpp>
#include <widget_consumer/consumer.hpp>
#include <widget_consumer/consumer_options.hpp>
#include <widget_consumer/delivery.hpp>
#include <widget_consumer/destination/directory.hpp>
#include <widget_consumer/destination/dynamodb_table.hpp>
#include <widget_consumer/destination/fencing.hpp>
#include <widget_consumer/destination/s3_bucket.hpp>
#include <widget_consumer/events.hpp>
#include <widget_consumer/log/basic_log.hpp>
#include <widget_consumer/log/console.hpp>
#include <widget_consumer/log/daily_file.hpp>
#include <widget_consumer/log/json_lines.hpp>
#include <widget_consumer/log/null.hpp>
#include <widget_consumer/log/tee.hpp>
#include <widget_consumer/position.hpp>
#include <widget_consumer/source/directory.hpp>
#include <widget_consumer/source/s3_bucket.hpp>
#include <widget_consumer/source/sqs_queue.hpp>
#include <widget_consumer/stop.hpp>
#include <widget_consumer/store_error.hpp>

/// The consumer, its policy concepts, and the sources, stores and logs it ships with.
namespace widget_consumer {

/// Named combinations, as Beast names basic_stream<tcp, ...> tcp_stream.
template <log_policy Log = console_log>
using basic_directory_to_directory_consumer = consumer<directory_source, directory_store, Log>;
/// A folder-to-folder consumer with the console log: for tests and local runs.
using directory_to_directory_consumer = basic_directory_to_directory_consumer<>;

/// An S3-bucket-to-S3-bucket consumer with a log of your choice.
template <log_policy Log = console_log>
using basic_s3_to_s3_consumer = consumer<s3_bucket_source, s3_bucket_store, Log>;
/// An S3-bucket-to-DynamoDB-table consumer with a log of your choice.
template <log_policy Log = console_log>
using basic_s3_to_dynamodb_consumer = consumer<s3_bucket_source, dynamodb_table_store, Log>;
/// An SQS-queue-to-S3-bucket consumer with a log of your choice.
template <log_policy Log = console_log>
using basic_sqs_to_s3_consumer = consumer<sqs_queue_source, s3_bucket_store, Log>;
/// An SQS-queue-to-DynamoDB-table consumer with a log of your choice.
template <log_policy Log = console_log>
using basic_sqs_to_dynamodb_consumer = consumer<sqs_queue_source, dynamodb_table_store, Log>;

/// The S3 to S3 consumer with the console log.
using s3_to_s3_consumer = basic_s3_to_s3_consumer<>;
/// The S3 to DynamoDB consumer with the console log.
using s3_to_dynamodb_consumer = basic_s3_to_dynamodb_consumer<>;
/// The SQS to S3 consumer with the console log.
using sqs_to_s3_consumer = basic_sqs_to_s3_consumer<>;
/// The SQS to DynamoDB consumer with the console log.
using sqs_to_dynamodb_consumer = basic_sqs_to_dynamodb_consumer<>;

}  // namespace widget_consumer
