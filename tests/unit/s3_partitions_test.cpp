// How consumers sharing one S3 request bucket divide the work
// (RELIABILITY.md, "Several consumers on one S3 bucket"): the partition of a
// request, the fair share, and the hand-out rules of the partition table,
// down to the cross-consumer order rule on an in-memory bucket: one widget's
// requests are applied in key order even when its partition moves from one
// consumer to another mid-pass.

#include <widget_consumer/source/detail/s3_partition_keys.hpp>
#include <widget_consumer/source/detail/s3_partition_table.hpp>
#include <widget_consumer/source/detail/s3_partitions.hpp>
#include <widget_consumer/source/detail/s3_released_keys.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

namespace {

using namespace std::chrono_literals;
using widget_consumer::detail::s3_fair_share;
using widget_consumer::detail::s3_partition_count;
using widget_consumer::detail::s3_partition_keys;
using widget_consumer::detail::s3_partition_of_request;
using widget_consumer::detail::s3_partition_of_text;
using widget_consumer::detail::s3_partition_table;
using widget_consumer::detail::s3_released_keys;
using clock_type = s3_partition_table::clock;

std::string body(const std::string& type, const std::string& widget,
                 const std::string& owner = "Mary Matthews") {
  return R"({"type":")" + type + R"(","requestId":"r-)" + widget + R"(","widgetId":")" + widget +
         R"(","owner":")" + owner + R"("})";
}

// FNV-1a 64 (the published algorithm: offset basis 0xcbf29ce484222325, prime
// 0x100000001b3) mod 32, computed apart from the code under test, by a
// Python transcription of the specification.
TEST(s3_partitions, the_partition_is_fnv1a_64_of_the_text_mod_32) {
  EXPECT_EQ(s3_partition_of_text("w1"), 5u);
  EXPECT_EQ(s3_partition_of_text("widget-42"), 2u);
  EXPECT_EQ(s3_partition_of_text(""), 5u);
  EXPECT_EQ(s3_partition_of_text("1700000000001"), 24u);
  EXPECT_EQ(s3_partition_of_text("\xC3\x96lfass"), 7u);  // "Ölfass", UTF-8 bytes
}

TEST(s3_partitions, every_request_of_a_widget_lies_in_the_widgets_partition) {
  const std::uint32_t expected = s3_partition_of_text("widget-42");
  EXPECT_EQ(s3_partition_of_request("1700000000001", body("create", "widget-42")), expected);
  EXPECT_EQ(s3_partition_of_request("1700000000002", body("update", "widget-42")), expected);
  EXPECT_EQ(s3_partition_of_request("1700000000003", body("delete", "widget-42")), expected);
  // Invalid in another field: still the widget's (it is rejected, by one consumer).
  EXPECT_EQ(s3_partition_of_request("1700000000004", body("update", "widget-42", "R2-D2")),
            expected);
}

TEST(s3_partitions, a_body_naming_no_widget_lies_in_the_partition_of_its_key) {
  const std::string key = "1700000000001";
  const std::uint32_t by_key = s3_partition_of_text(key);
  EXPECT_EQ(s3_partition_of_request(key, "not json"), by_key);
  EXPECT_EQ(s3_partition_of_request(key, R"({"type":"create","widgetId":17})"), by_key);
  EXPECT_EQ(s3_partition_of_request(key, R"(["widgetId","w1"])"), by_key);
  EXPECT_EQ(s3_partition_of_request(key, ""), by_key);
}

TEST(s3_partitions, the_fair_shares_of_the_live_consumers_cover_every_partition) {
  for (std::size_t live = 1; live <= 40; ++live) {
    const std::size_t share = s3_fair_share(live);
    EXPECT_GE(share * live, s3_partition_count) << live;
    EXPECT_LT((share - 1) * live, s3_partition_count) << live;  // and no more than needed
  }
  EXPECT_EQ(s3_fair_share(0), s3_partition_count);
}

TEST(s3_partition_table, a_partition_claimed_during_a_pass_is_handed_out_from_the_next_pass_only) {
  s3_partition_table table(60s);
  const auto t0 = clock_type::now();
  const auto pass_before = t0 - 1s;
  table.hold({.partition = 3, .etag = "\"a\"", .renewal = 0}, t0, t0);
  EXPECT_FALSE(table.usable(3, pass_before, t0 + 1s));
  EXPECT_FALSE(table.take(3, pass_before, t0 + 1s));
  EXPECT_TRUE(table.usable(3, t0 + 1s, t0 + 2s));
  EXPECT_FALSE(table.usable(4, t0 + 1s, t0 + 2s));  // not held
}

TEST(s3_partition_table, a_claim_not_renewed_for_three_quarters_of_its_lifetime_is_not_handed_out) {
  s3_partition_table table(60s);
  const auto t0 = clock_type::now();
  table.hold({.partition = 1, .etag = "\"a\"", .renewal = 0}, t0, t0);
  EXPECT_TRUE(table.usable(1, t0 + 1ms, t0 + 44s));
  EXPECT_FALSE(table.usable(1, t0 + 1ms, t0 + 45s));
  EXPECT_TRUE(table.due_for_renewal(t0 + 19s).empty());
  const auto due = table.due_for_renewal(t0 + 20s);
  ASSERT_EQ(due.size(), 1u);
  table.renewed(due[0], "\"b\"", t0 + 46s);
  EXPECT_TRUE(table.usable(1, t0 + 1ms, t0 + 47s));
}

TEST(s3_partition_table, a_late_answer_counts_from_when_the_claim_was_sent) {
  // Others judge by the server's Last-Modified, at or after the send: going
  // stale by the send time keeps this consumer on the safe side of them.
  s3_partition_table table(60s);
  const auto sent = clock_type::now();
  const auto answered = sent + 10s;
  table.hold({.partition = 2, .etag = "\"a\"", .renewal = 0}, sent, answered);
  EXPECT_FALSE(table.usable(2, answered - 1ms, answered + 1s));  // the pass began before the answer
  EXPECT_TRUE(table.usable(2, answered + 1ms, sent + 44s));
  EXPECT_FALSE(table.usable(2, answered + 1ms, sent + 45s));
}

TEST(s3_partition_table, a_renewal_refused_loses_the_partition) {
  s3_partition_table table(60s);
  const auto t0 = clock_type::now();
  table.hold({.partition = 7, .etag = "\"a\"", .renewal = 4}, t0, t0);
  const auto due = table.due_for_renewal(t0 + 30s);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].renewal, 4u);
  table.renewed(due[0], std::nullopt, t0 + 31s);
  EXPECT_EQ(table.held(), 0u);
  EXPECT_EQ(table.lost_count(), 1u);
  EXPECT_FALSE(table.usable(7, t0 + 1ms, t0 + 32s));
}

TEST(s3_partition_table, a_partition_over_the_share_goes_back_once_its_requests_are_done) {
  s3_partition_table table(60s);
  const auto t0 = clock_type::now();
  for (std::uint32_t p = 0; p < 4; ++p)
    table.hold({.partition = p, .etag = "\"" + std::to_string(p) + "\""}, t0, t0);
  const auto pass = t0 + 1ms;
  ASSERT_TRUE(table.take(3, pass, t0 + 1s));
  ASSERT_TRUE(table.take(3, pass, t0 + 1s));
  EXPECT_EQ(table.keep(2), 2u);  // 2 and 3 go back, the highest
  EXPECT_FALSE(table.usable(2, pass, t0 + 1s));
  EXPECT_FALSE(table.take(3, pass, t0 + 1s));
  EXPECT_TRUE(table.usable(1, pass, t0 + 1s));
  auto idle = table.releasable();
  ASSERT_EQ(idle.size(), 1u);
  EXPECT_EQ(idle[0].partition, 2u);
  EXPECT_FALSE(table.done(3));  // one of its two still busy
  EXPECT_TRUE(table.done(3));
  idle = table.releasable();
  ASSERT_EQ(idle.size(), 2u);
  // While the deletes of their claims are under way, neither is handed out.
  EXPECT_FALSE(table.take(2, pass, t0 + 1s));
  EXPECT_FALSE(table.take(3, pass, t0 + 1s));
  for (const auto& each : idle)
    table.released(each);
  EXPECT_EQ(table.held(), 2u);
  EXPECT_FALSE(table.any_releasable());
}

// Each claim of a partition is a new tenure: a release made under one is
// known to have gone elsewhere once the partition was lost, even if it is
// held again now.
TEST(s3_partition_table, a_partition_lost_and_claimed_again_is_a_new_tenure) {
  s3_partition_table table(60s);
  const auto t0 = clock_type::now();
  EXPECT_FALSE(table.tenure(7).has_value());
  table.hold({.partition = 7, .etag = "\"a\""}, t0, t0);
  const auto first = table.tenure(7);
  ASSERT_TRUE(first.has_value());
  table.renewed({.partition = 7, .etag = "\"a\""}, "\"b\"", t0 + 20s);
  EXPECT_EQ(table.tenure(7), first);  // renewed: the same tenure
  table.renewed({.partition = 7, .etag = "\"b\""}, std::nullopt, t0 + 40s);
  EXPECT_FALSE(table.tenure(7).has_value());  // lost
  table.hold({.partition = 7, .etag = "\"c\""}, t0 + 50s, t0 + 50s);
  ASSERT_TRUE(table.tenure(7).has_value());
  EXPECT_NE(table.tenure(7), first);
}

// F1 of issue 28, at the source's bookkeeping: a release kept under the
// tenure it was taken in is dropped, and told, at the first pass after its
// partition went elsewhere (lost and regained included), and so is one not
// listed in a whole pass (gone from the bucket). One whose tenure holds and
// that is listed is kept until handed out again. Without claims, a release
// gone from the bucket is dropped without being told (its widget is not
// known here).
TEST(s3_released_keys, a_release_is_forgotten_once_its_partition_changed_hands_or_it_is_gone) {
  s3_released_keys released;
  const auto t0 = clock_type::now();
  std::map<std::uint32_t, std::optional<std::uint64_t>> tenure{{1, 5}, {2, 6}, {3, 7}};
  const auto now_tenure = [&](std::uint32_t p) { return tenure.at(p); };
  std::vector<std::string> dropped;
  const auto drop = [&](const std::string& key) { dropped.push_back(key); };
  released.keep("k1", t0 + 1s, {{.partition = 1, .tenure = 5, .widget = "w1"}});
  released.keep("k2", t0 + 1s, {{.partition = 2, .tenure = 6, .widget = "w2"}});
  released.keep("k3", t0 + 1s, {{.partition = 3, .tenure = 7, .widget = "w3"}});
  released.keep("plain", t0 + 1s);
  tenure[2] = std::nullopt;  // lost, or given back
  tenure[3] = 9;             // lost and claimed again
  released.start_pass(false, t0, now_tenure, drop);
  std::ranges::sort(dropped);
  EXPECT_EQ(dropped, (std::vector<std::string>{"k2", "k3"}));
  auto forgotten = released.take_forgotten();
  std::ranges::sort(forgotten, {}, &widget_consumer::forgotten_release::name);
  ASSERT_EQ(forgotten.size(), 2u);
  EXPECT_EQ(forgotten[0].name, "k2");
  EXPECT_EQ(forgotten[0].widget_id, "w2");
  EXPECT_EQ(forgotten[1].widget_id, "w3");
  EXPECT_TRUE(released.take_forgotten().empty());

  // Listed in the pass: waiting until due, and kept after (not handed out).
  EXPECT_TRUE(released.waiting("k1", t0));
  EXPECT_TRUE(released.waiting("plain", t0));
  EXPECT_FALSE(released.waiting("k2", t0));
  EXPECT_FALSE(released.waiting("k1", t0 + 2s));
  dropped.clear();
  released.start_pass(true, t0 + 3s, now_tenure, drop);
  EXPECT_TRUE(dropped.empty());
  EXPECT_FALSE(released.empty());

  // Not listed in the whole pass that began after they were released: gone.
  released.start_pass(true, t0 + 4s, now_tenure, drop);
  std::ranges::sort(dropped);
  EXPECT_EQ(dropped, (std::vector<std::string>{"k1", "plain"}));
  EXPECT_TRUE(released.empty());
  forgotten = released.take_forgotten();
  ASSERT_EQ(forgotten.size(), 1u);
  EXPECT_EQ(forgotten[0].name, "k1");

  released.keep("again", t0 + 1s, {{.partition = 1, .tenure = 5, .widget = "w1"}});
  released.handed_out("again");
  EXPECT_TRUE(released.empty());
}

// F2 of issue 28: a claim deleted behind its owner's back must not look free
// to others before the owner's next balance round writes it again. A
// partition not listed is free only once it stayed unlisted for `quiet`
// (none at a consumer's first round); listed again, the wait starts over.
TEST(s3_partition_table, a_partition_unlisted_is_free_only_after_the_quiet_time) {
  s3_partition_table table(60s);
  const auto t0 = clock_type::now();
  const std::unordered_set<std::uint32_t> none;
  EXPECT_EQ(table.not_held(none, t0, 0ms).first.size(), s3_partition_count);  // first round
  EXPECT_TRUE(table.not_held(none, t0 + 1s, 4s).first.empty());
  EXPECT_EQ(table.not_held(none, t0 + 4s, 4s).first.size(), s3_partition_count);
  const auto [free, elsewhere] = table.not_held({5}, t0 + 5s, 4s);
  EXPECT_EQ(elsewhere, std::vector<std::uint32_t>{5});
  EXPECT_EQ(free.size(), s3_partition_count - 1);
  auto later = table.not_held(none, t0 + 6s, 4s).first;  // 5 unlisted again: waits
  EXPECT_EQ(std::ranges::count(later, 5u), 0);
  later = table.not_held(none, t0 + 10s, 4s).first;
  EXPECT_EQ(std::ranges::count(later, 5u), 1);
}

TEST(s3_partition_keys, a_key_held_elsewhere_is_remembered_while_listed_and_counts_as_work) {
  s3_partition_keys keys;
  keys.start_pass();
  keys.elsewhere("k1", 9);
  EXPECT_TRUE(keys.others_at_work());
  keys.start_pass();
  EXPECT_EQ(keys.known("k1"), 9u);  // listed again: no GET needed
  keys.start_pass();
  EXPECT_TRUE(keys.others_at_work());  // seen in the pass before
  keys.start_pass();
  EXPECT_FALSE(keys.others_at_work());
  EXPECT_EQ(keys.known("k1"), std::nullopt);  // not listed for two passes: gone
  keys.taken("k2", {.partition = 4, .widget = "w2"});
  const auto done = keys.done("k2");
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->partition, 4u);
  EXPECT_EQ(done->widget, "w2");
  EXPECT_FALSE(keys.done("k2").has_value());
}

// ---- the order rule across consumers, on an in-memory bucket --------------

// One consumer as s3_bucket_source makes it, reduced to the rules: a pass
// goes through the keys in order and hands out those whose partition the
// table lets it take; what it hands out is applied, then deleted, then done.
struct model_consumer {
  std::string name;
  s3_partition_table table{60s};
  s3_partition_keys keys;
  clock_type::time_point pass_started{};
  std::vector<std::string> pass_keys;  // what this pass lists, in order
  std::size_t next = 0;

  void start_pass(const std::map<std::string, std::string>& bucket, clock_type::time_point now) {
    pass_started = now;
    keys.start_pass();
    pass_keys.clear();
    for (const auto& [key, text] : bucket)
      pass_keys.push_back(key);
    next = 0;
  }
};

struct applied_request {
  std::string key;
  std::string widget;
  std::string by;
};

// Consumer `c` goes through up to `examine` more keys of its pass; each it
// may take is applied, deleted from the bucket and done.
void work(model_consumer& c, std::map<std::string, std::string>& bucket,
          std::vector<applied_request>& applied, std::size_t examine, clock_type::time_point now) {
  for (std::size_t seen = 0; seen < examine && c.next < c.pass_keys.size(); ++seen, ++c.next) {
    const std::string& key = c.pass_keys[c.next];
    const auto found = bucket.find(key);
    if (found == bucket.end())
      continue;  // deleted since it was listed
    const std::uint32_t p = s3_partition_of_request(key, found->second);
    if (!c.keys.allowed(p, [&] { return c.table.take(p, c.pass_started, now); }))
      continue;
    const auto widget = widget_consumer::detail::s3_widget_id_of(found->second);
    applied.push_back({.key = key, .widget = widget.value_or(""), .by = c.name});
    bucket.erase(found);
    c.table.done(p);
  }
}

TEST(s3_partition_order, a_widgets_requests_are_applied_in_key_order_across_a_handover) {
  std::map<std::string, std::string> bucket;
  std::map<std::string, std::vector<std::string>> keys_of;  // the spec: key order per widget
  const std::vector<std::string> widgets = {"w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8"};
  for (int i = 0; i < 200; ++i) {
    const std::string key = std::to_string(1700000000000 + i);
    const std::string& widget = widgets[static_cast<std::size_t>(i * 7 % 8)];
    bucket[key] = body(i < 8 ? "create" : "update", widget);
    keys_of[widget].push_back(key);
  }
  const std::size_t total = bucket.size();
  auto now = clock_type::now();
  std::vector<applied_request> applied;

  // A alone holds every partition, and is part-way through a pass.
  model_consumer a;
  model_consumer b;
  a.name = "A";
  b.name = "B";
  for (std::uint32_t p = 0; p < s3_partition_count; ++p)
    a.table.hold({.partition = p, .etag = "\"a\""}, now, now);
  now += 1ms;
  a.start_pass(bucket, now);
  b.start_pass(bucket, now);
  work(a, bucket, applied, 50, now);
  work(b, bucket, applied, 100, now);  // holds nothing: skips the first 100 keys

  // B joins: A keeps half and gives the rest back (nothing of them busy),
  // B claims them in the middle of its pass and of A's.
  a.table.keep(s3_fair_share(2));
  for (const auto& idle : a.table.releasable()) {
    a.table.released(idle);
    now += 1ms;
    b.table.hold({.partition = idle.partition, .etag = "\"b\""}, now, now);
  }
  // The rest of B's old pass: keys 100 on of its new partitions must wait,
  // since it skipped older keys of their widgets (50 to 99, not applied yet).
  work(b, bucket, applied, 1000, now);
  EXPECT_EQ(applied.size(), 50u);
  work(a, bucket, applied, 1000, now);  // A finishes its pass on what it kept
  now += 1ms;
  b.start_pass(bucket, now);
  work(b, bucket, applied, 1000, now);
  now += 1ms;
  a.start_pass(bucket, now);
  work(a, bucket, applied, 1000, now);

  EXPECT_TRUE(bucket.empty());
  ASSERT_EQ(applied.size(), total);  // each request once
  std::map<std::string, std::vector<std::string>> applied_of;
  std::set<std::string> by;
  for (const auto& each : applied) {
    applied_of[each.widget].push_back(each.key);
    by.insert(each.by);
  }
  EXPECT_EQ(applied_of, keys_of);  // per widget, in key order
  EXPECT_EQ(by, (std::set<std::string>{"A", "B"}));
}

// The requests of the bucket as the spec orders them: by key, per widget.
std::map<std::string, std::vector<std::string>> fill(std::map<std::string, std::string>& bucket) {
  const std::vector<std::string> widgets = {"w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8"};
  std::map<std::string, std::vector<std::string>> keys_of;
  for (int i = 0; i < 200; ++i) {
    const std::string key = std::to_string(1700000000000 + i);
    const std::string& widget = widgets[static_cast<std::size_t>(i * 7 % 8)];
    bucket[key] = body(i < 8 ? "create" : "update", widget);
    keys_of[widget].push_back(key);
  }
  return keys_of;
}

TEST(s3_partition_order, a_claim_late_in_renewal_stops_its_partition_for_the_rest_of_the_pass) {
  std::map<std::string, std::string> bucket;
  const auto keys_of = fill(bucket);
  const auto t0 = clock_type::now();
  std::vector<applied_request> applied;
  model_consumer a;
  a.name = "A";
  for (std::uint32_t p = 0; p < s3_partition_count; ++p)
    a.table.hold({.partition = p, .etag = "\"a\""}, t0, t0);
  a.start_pass(bucket, t0 + 1ms);
  work(a, bucket, applied, 50, t0 + 1s);
  work(a, bucket, applied, 50, t0 + 46s);  // not renewed for 3/4 lifetime: all skipped
  EXPECT_EQ(applied.size(), 50u);
  for (const auto& due : a.table.due_for_renewal(t0 + 47s))
    a.table.renewed(due, "\"b\"", t0 + 47s);
  work(a, bucket, applied, 1000, t0 + 48s);  // renewed, but the pass skipped older keys
  EXPECT_EQ(applied.size(), 50u);
  a.start_pass(bucket, t0 + 49s);
  work(a, bucket, applied, 1000, t0 + 50s);

  EXPECT_TRUE(bucket.empty());
  std::map<std::string, std::vector<std::string>> applied_of;
  for (const auto& each : applied)
    applied_of[each.widget].push_back(each.key);
  EXPECT_EQ(applied_of, keys_of);
}

}  // namespace
