#pragma once
// Umbrella header: everything a program needs to run a consumer.

#include "request.hpp"
#include "widget.hpp"

#include "concepts.hpp"
#include "consumer.hpp"
#include "consumer_options.hpp"
#include "delivery.hpp"
#include "destination/directory.hpp"
#include "destination/dynamodb_table.hpp"
#include "destination/s3_bucket.hpp"
#include "events.hpp"
#include "log/basic_log.hpp"
#include "log/console.hpp"
#include "log/daily_file.hpp"
#include "log/json_lines.hpp"
#include "log/null.hpp"
#include "log/tee.hpp"
#include "source/directory.hpp"
#include "source/s3_bucket.hpp"
#include "source/sqs_queue.hpp"
#include "stop.hpp"
#include "store_error.hpp"

namespace widget_consumer {

// Named combinations, as Beast names basic_stream<tcp, ...> tcp_stream.
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
