#include "widget_consumer/aws/uri.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using namespace widget_consumer::aws;

TEST(uri, encode_keeps_only_unreserved) {
  EXPECT_EQ(uri_encode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(uri_encode("a b+c=d&e/f%g*"), "a%20b%2Bc%3Dd%26e%2Ff%25g%2A");
  EXPECT_EQ(uri_encode("a b/c", true), "a%20b/c");
  EXPECT_EQ(uri_encode("\xc3\xa9"), "%C3%A9");  // UTF-8 bytes, upper-case hex
}

TEST(uri, decode_is_the_inverse_and_tolerates_bad_escapes) {
  EXPECT_EQ(uri_decode("a%20b%2Bc%c3%A9"), "a b+c\xc3\xa9");
  EXPECT_EQ(uri_decode("a+b"), "a+b");
  EXPECT_EQ(uri_decode("100%"), "100%");
  EXPECT_EQ(uri_decode("%zz%4"), "%zz%4");
}

TEST(uri, canonical_query_sorts_encoded_pairs) {
  EXPECT_EQ(canonical_query_string(""), "");
  EXPECT_EQ(canonical_query_string("b=2&a=1&a=0&c"), "a=0&a=1&b=2&c=");
  EXPECT_EQ(canonical_query_string("prefix=a b&list-type=2"), "list-type=2&prefix=a%20b");
  EXPECT_EQ(canonical_query_string("k=%7e%2f"), "k=~%2F");
}

TEST(uri, make_query_round_trips_through_parse) {
  const query_parameters parameters{{"Action", "SendMessage"}, {"MessageBody", "{\"a\": 1}&"}};
  const auto query = make_query(parameters);
  EXPECT_EQ(query, "Action=SendMessage&MessageBody=%7B%22a%22%3A%201%7D%26");
  EXPECT_EQ(parse_query(query), parameters);
}

TEST(uri, split_url_parts) {
  const auto parts = split_url("HTTPS://bucket.s3.amazonaws.com/a/b%20c?x=1&y#frag");
  EXPECT_EQ(parts.scheme, "https");
  EXPECT_EQ(parts.host, "bucket.s3.amazonaws.com");
  EXPECT_EQ(parts.port, "");
  EXPECT_EQ(parts.path, "/a/b%20c");
  EXPECT_EQ(parts.query, "x=1&y");
  EXPECT_EQ(parts.host_header(), "bucket.s3.amazonaws.com");
}

TEST(uri, split_url_ports_and_ipv6) {
  EXPECT_EQ(split_url("http://127.0.0.1:5000").host_header(), "127.0.0.1:5000");
  EXPECT_EQ(split_url("http://127.0.0.1:5000").path, "/");
  EXPECT_EQ(split_url("https://h:443/").host_header(), "h");
  EXPECT_EQ(split_url("http://h:80?q").host_header(), "h");
  EXPECT_EQ(split_url("http://h:80?q").query, "q");
  const auto v6 = split_url("http://[::1]:8080/p");
  EXPECT_EQ(v6.host, "[::1]");
  EXPECT_EQ(v6.port, "8080");
  EXPECT_EQ(split_url("http://[::1]/p").host_header(), "[::1]");
}

TEST(uri, split_url_rejects_relative_and_hostless) {
  EXPECT_THROW(split_url("/just/a/path"), url_error);
  EXPECT_THROW(split_url("http:///path"), url_error);
}

}  // namespace
