// The cross-consumer order rule of the S3 source (DESIGN.md: one widget's
// requests are applied in key order), on an in-memory bucket: a consumer
// does not hand out a key while an older key of the same widget is listed
// and claimed by another consumer; it does once a pass no longer lists it.

#include <widget_consumer/source/detail/s3_claim_order.hpp>

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace {

using widget_consumer::detail::s3_claim_order;

std::string body(const std::string& type, const std::string& widget) {
  return R"({"type":")" + type + R"(","requestId":"r-)" + widget + R"(","widgetId":")" + widget +
         R"(","owner":"Mary Matthews"})";
}

// A request bucket in memory: key -> body, in key order as S3 lists them,
// and which consumer holds each key's claim.
struct memory_bucket {
  std::map<std::string, std::string> requests;
  std::map<std::string, std::string> claims;  // key -> owner
};

// One pass of consumer `self` over the bucket, as s3_bucket_source makes it:
// every listed key is claimed or found claimed elsewhere, and the keys it
// may hand out now come back in key order. `read_bodies`: the GETs a
// consumer would make (a body held elsewhere is read once).
std::vector<std::string> pass(memory_bucket& bucket, s3_claim_order& order, const std::string& self,
                              int* read_bodies = nullptr) {
  order.start_pass();
  std::vector<std::string> handed_out;
  for (const auto& [key, text] : bucket.requests) {
    const auto claim = bucket.claims.try_emplace(key, self).first;
    if (claim->second != self) {
      const bool known = order.knows(key);
      if (!known && read_bodies != nullptr)
        ++*read_bodies;
      order.held_elsewhere(key, known ? nullptr : &text);
      continue;
    }
    if (!order.must_wait(key, &text))
      handed_out.push_back(key);
  }
  return handed_out;
}

TEST(s3_claim_order, an_older_key_claimed_elsewhere_holds_back_the_younger_until_it_is_gone) {
  memory_bucket bucket;
  bucket.requests = {{"1700000000001", body("create", "w1")},
                     {"1700000000002", body("update", "w1")},
                     {"1700000000003", body("create", "w2")}};
  bucket.claims["1700000000001"] = "B";  // B is applying the create
  s3_claim_order order;

  EXPECT_EQ(pass(bucket, order, "A"), std::vector<std::string>{"1700000000003"});
  bucket.requests.erase("1700000000003");  // A applied it
  EXPECT_TRUE(order.others_at_work());
  // B has not finished: the update still waits, pass after pass.
  EXPECT_EQ(pass(bucket, order, "A"), std::vector<std::string>{});
  EXPECT_EQ(pass(bucket, order, "A"), std::vector<std::string>{});

  // B applied the create and deleted it: the next pass hands out the update.
  bucket.requests.erase("1700000000001");
  bucket.claims.erase("1700000000001");
  EXPECT_EQ(pass(bucket, order, "A"), std::vector<std::string>{"1700000000002"});
}

TEST(s3_claim_order, only_the_same_widget_waits_and_only_for_an_older_key) {
  memory_bucket bucket;
  bucket.requests = {{"1700000000001", body("create", "w1")},
                     {"1700000000002", body("create", "w2")},
                     {"1700000000003", body("update", "w1")},
                     {"1700000000004", body("update", "w2")}};
  // B holds the younger w2 key: nothing of ours is older than it, so the
  // older w2 create goes; the w1 keys are ours alone.
  bucket.claims["1700000000004"] = "B";
  s3_claim_order order;
  EXPECT_EQ(pass(bucket, order, "A"),
            (std::vector<std::string>{"1700000000001", "1700000000002", "1700000000003"}));
}

TEST(s3_claim_order, a_body_that_names_no_widget_holds_nothing_back) {
  memory_bucket bucket;
  bucket.requests = {{"1700000000001", "not json"}, {"1700000000002", body("create", "w1")}};
  bucket.claims["1700000000001"] = "B";
  s3_claim_order order;
  EXPECT_EQ(pass(bucket, order, "A"), std::vector<std::string>{"1700000000002"});
}

TEST(s3_claim_order, a_body_held_elsewhere_is_read_once_while_it_is_listed) {
  memory_bucket bucket;
  bucket.requests = {{"1700000000001", body("create", "w1")},
                     {"1700000000002", body("update", "w1")}};
  bucket.claims["1700000000001"] = "B";
  s3_claim_order order;
  int reads = 0;
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(pass(bucket, order, "A", &reads), std::vector<std::string>{});
  EXPECT_EQ(reads, 1);
  // Gone for a whole pass, it is forgotten.
  bucket.requests.erase("1700000000001");
  bucket.claims.erase("1700000000001");
  EXPECT_EQ(pass(bucket, order, "A"), std::vector<std::string>{"1700000000002"});
  pass(bucket, order, "A");
  EXPECT_FALSE(order.knows("1700000000001"));
  EXPECT_FALSE(order.others_at_work());
}

}  // namespace
