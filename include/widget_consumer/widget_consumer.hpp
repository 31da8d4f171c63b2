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
using directory_to_directory_consumer = basic_directory_to_directory_consumer<>;

template <log_policy Log = console_log>
using basic_s3_to_s3_consumer = consumer<s3_bucket_source, s3_bucket_store, Log>;
template <log_policy Log = console_log>
using basic_s3_to_dynamodb_consumer = consumer<s3_bucket_source, dynamodb_table_store, Log>;
template <log_policy Log = console_log>
using basic_sqs_to_s3_consumer = consumer<sqs_queue_source, s3_bucket_store, Log>;
template <log_policy Log = console_log>
using basic_sqs_to_dynamodb_consumer = consumer<sqs_queue_source, dynamodb_table_store, Log>;

using s3_to_s3_consumer = basic_s3_to_s3_consumer<>;
using s3_to_dynamodb_consumer = basic_s3_to_dynamodb_consumer<>;
using sqs_to_s3_consumer = basic_sqs_to_s3_consumer<>;
using sqs_to_dynamodb_consumer = basic_sqs_to_dynamodb_consumer<>;

}  // namespace widget_consumer
