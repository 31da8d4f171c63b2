#pragma once
// The fenced writes of s3_bucket_store (destination/s3_bucket.hpp, whose top
// comment says why): each widget object carries its position in the user
// metadata x-amz-meta-wc-position, a delete leaves a tombstone object with
// its position under the tombstone prefix, and every write is conditional on
// the ETag (or the absence) that the decision was taken on. A 412 means
// another writer came between: read again and decide again.
//
// Calls per request (with fencing off: create 1 PutObject; update GetObject
// + PutObject; delete GetObject + DeleteObject):
//   create  HeadObject(tombstone) + PutObject If-None-Match: *
//           + HeadObject(tombstone) again                          3
//           over an existing widget: + HeadObject + PutObject If-Match  4
//   update  GetObject + PutObject If-Match                          2
//   delete  GetObject + PutObject(tombstone) If-None-Match: *
//           + DeleteObject If-Match                                 3
//           a widget deleted before: + HeadObject + PutObject If-Match  5
//   stale   what was read up to the refusal (1 or 2), nothing written
//   not_found (update, delete)  GetObject, HeadObject (tombstone)   2
// Each 412 costs the reads and the write again, at most max_attempts times.
//
// The order of a delete: the tombstone first, then the widget (If-Match). A
// crash between them leaves the widget and a tombstone newer than it. The
// delete was not acknowledged, so it comes again: the widget's position is
// still older, the tombstone holds exactly this delete's position (taken as
// its own earlier attempt, not as a newer request), and the widget goes.
// Meanwhile a create older than the delete is refused by the tombstone and a
// newer one applies (the delete, again, is then stale against it); an update
// may apply to the widget still there and is removed with it, which is where
// the delete, being newer, leaves it anyway. The other order would lose the
// tombstone with the crash: the widget gone, the delete again not_found, and
// a late create would bring the widget back.
//
// A create reads the tombstone and writes the widget If-None-Match: *: the
// widget may not be brought back over a newer delete. A create that stalls
// between that read and its PutObject while another consumer deletes the
// widget with a newer position (having created it, if it was not there)
// would write it back at its older position, so a create that wrote where
// there was no widget reads the tombstone again and takes its write back
// (DeleteObject If-Match its own ETag) when the tombstone is newer: stale.
// That is a third call on that path only (a create over an existing widget
// is fenced by the widget's own position and If-Match).
//
// An update does not read the tombstone: a widget that exists is newer than
// its tombstone unless a delete is between its two steps (above).

#include <widget_consumer/destination/detail/widget_document.hpp>
#include <widget_consumer/position.hpp>
#include <widget_consumer/request.hpp>
#include <widget_consumer/store_error.hpp>
#include <widget_consumer/widget.hpp>

#include <widget_consumer/aws/s3.hpp>
#include <widget_consumer/aws/uri.hpp>

#include <cstddef>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace widget_consumer::detail {

// x-amz-meta-wc-position: the widget's or the tombstone's position.
inline constexpr std::string_view s3_position_metadata = "wc-position";
// S3 allows 2 KB of user metadata, its names included.
inline constexpr std::size_t s3_max_position_bytes = 2000;

// Header values travel as printable ASCII: other bytes, and '%', as %XX.
inline std::string s3_encode_position(std::string_view position) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(position.size());
  for (const char c : position) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte > 0x20 && byte < 0x7f && c != '%') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(digits[byte >> 4]);
      out.push_back(digits[byte & 0x0f]);
    }
  }
  return out;
}

inline std::string s3_decode_position(std::string_view value) {
  return aws::uri_decode(value);
}

// An object as the fence read it: the ETag its write will be conditional
// on, and the position it holds ("" when it holds none: written unfenced).
struct s3_fenced_state {
  std::string etag;
  std::string position;
};

// Lives for one request: it holds on to the store's client and bucket name.
class s3_widget_fence {
 public:
  static constexpr int max_attempts = 8;

  s3_widget_fence(aws::s3_client& client, const std::string& bucket)
      : client_(client), bucket_(bucket) {}

  fenced_outcome create(const std::string& key, const std::string& tombstone_key,
                        const widget& created, std::string_view position) {
    const std::string body = to_json(created);
    for (int attempt = 0; attempt < max_attempts; ++attempt) {
      // A late create after a delete: the tombstone is newer.
      if (const auto tombstone = head(tombstone_key);
          tombstone && !moves_forward(position, tombstone->position))
        return {apply_outcome::stale, tombstone->position};
      if (const auto written = put(key, body, {.if_match = {}, .if_none_match = true}, position))
        return settle_created(key, tombstone_key, *written, position);
      // The widget exists: replace it if it is older.
      const auto current = head(key);
      if (!current)
        continue;  // deleted meanwhile: the tombstone decides again
      if (!moves_forward(position, current->position))
        return {apply_outcome::stale, current->position};
      if (put(key, body, {.if_match = current->etag, .if_none_match = false}, position))
        return {apply_outcome::applied};
    }
    throw kept_changing(key);
  }

  fenced_outcome update(const std::string& key, const std::string& tombstone_key,
                        const widget_request& request, std::string_view position) {
    for (int attempt = 0; attempt < max_attempts; ++attempt) {
      auto stored = read(key);
      if (!stored)
        return missing(tombstone_key, position);
      if (!moves_forward(position, stored->state.position))
        return {apply_outcome::stale, stored->state.position};
      // The owner check is exact, as unfenced (s3_bucket.hpp).
      if (stored->document.owner != request.owner)
        return {apply_outcome::not_found};
      apply_update(stored->document, request);
      if (put(key, to_json(stored->document),
              {.if_match = stored->state.etag, .if_none_match = false}, position))
        return {apply_outcome::applied};
    }
    throw kept_changing(key);
  }

  // The order of the two writes: see the top of this file.
  fenced_outcome remove(const std::string& key, const std::string& tombstone_key,
                        const widget_request& request, std::string_view position) {
    for (int attempt = 0; attempt < max_attempts; ++attempt) {
      const auto stored = read(key);
      if (!stored)
        return missing(tombstone_key, position);
      if (!moves_forward(position, stored->state.position))
        return {apply_outcome::stale, stored->state.position};
      if (stored->document.owner != request.owner)
        return {apply_outcome::not_found};
      const auto tombstone = write_tombstone(tombstone_key, position);
      if (!tombstone)
        continue;  // another tombstone came between: read both again
      if (!tombstone->empty())
        return {apply_outcome::stale, *tombstone};
      if (client_.delete_object_if_match(bucket_, key, stored->state.etag))
        return {apply_outcome::applied};
      // The widget changed after the read: decide again (the tombstone now
      // holds this position, which the next round takes for its own).
    }
    throw kept_changing(key);
  }

 private:
  static constexpr std::string_view tombstone_type = "text/plain";  // an empty body

  // A create written where there was no widget. A newer delete may have come
  // between the tombstone's read and the write (a stall there: the widget
  // created and deleted by another consumer meanwhile), so the tombstone is
  // read again, and a write it is newer than is taken back (If-Match: a
  // newer request that replaced it since is kept).
  fenced_outcome settle_created(const std::string& key, const std::string& tombstone_key,
                                std::string etag, std::string_view position) {
    const auto tombstone = head(tombstone_key);
    if (!tombstone || moves_forward(position, tombstone->position))
      return {apply_outcome::applied};
    if (etag.empty())  // a server that sent no ETag: read it, if it is still ours
      if (const auto current = head(key); current && current->position == position)
        etag = current->etag;
    if (!etag.empty())
      (void)client_.delete_object_if_match(bucket_, key, etag);
    return {apply_outcome::stale, tombstone->position};
  }

  // An update or delete that finds no widget: stale when a newer delete's
  // tombstone is why (a replay after the delete), else not found. One HEAD,
  // on this path only.
  fenced_outcome missing(const std::string& tombstone_key, std::string_view position) {
    if (const auto tombstone = head(tombstone_key);
        tombstone && !moves_forward(position, tombstone->position))
      return {apply_outcome::stale, tombstone->position};
    return {apply_outcome::not_found};
  }

  struct stored_widget {
    widget document;
    s3_fenced_state state;
  };

  // "" when the tombstone now holds `position`; the newer position it holds
  // when this delete is stale against it; nullopt when it changed under us.
  std::optional<std::string> write_tombstone(const std::string& tombstone_key,
                                             std::string_view position) {
    if (put(tombstone_key, "", {.if_match = {}, .if_none_match = true}, position, tombstone_type))
      return std::string{};
    const auto current = head(tombstone_key);
    if (!current)
      return std::nullopt;
    // Equal: this delete's own tombstone, left by an attempt that did not
    // get to delete the widget (a crash, a 412).
    if (current->position == position)
      return std::string{};
    if (!moves_forward(position, current->position))
      return current->position;
    if (put(tombstone_key, "", {.if_match = current->etag, .if_none_match = false}, position,
            tombstone_type))
      return std::string{};
    return std::nullopt;
  }

  std::optional<s3_fenced_state> head(const std::string& key) {
    auto info = client_.head_object(bucket_, key);
    if (!info)
      return std::nullopt;
    return s3_fenced_state{std::move(info->etag), position_of(info->metadata)};
  }

  std::optional<stored_widget> read(const std::string& key) {
    auto object = client_.get_object_with_info(bucket_, key);
    if (!object)
      return std::nullopt;
    try {
      return stored_widget{widget_from_json(object->body),
                           {std::move(object->etag), position_of(object->metadata)}};
    } catch (const std::exception& e) {
      throw store_error(store_failure::permanent, aws::s3_resource(bucket_, key) + ": " + e.what());
    }
  }

  // The written object's ETag; nullopt when the condition did not hold.
  std::optional<std::string> put(const std::string& key, std::string body,
                                 const aws::s3_write_condition& condition,
                                 std::string_view position,
                                 std::string_view content_type = "application/json") {
    std::string encoded = s3_encode_position(position);
    if (encoded.size() + s3_position_metadata.size() > s3_max_position_bytes)
      throw store_error(store_failure::bad_request,
                        "the request's position is " + std::to_string(encoded.size()) +
                            " bytes as S3 metadata, over S3's 2 KB: it cannot be fenced");
    const aws::s3_metadata metadata{{std::string(s3_position_metadata), std::move(encoded)}};
    return client_.put_object_if(bucket_, key, std::move(body), condition, content_type, metadata);
  }

  static std::string position_of(const std::map<std::string, std::string>& metadata) {
    const auto found = metadata.find(std::string(s3_position_metadata));
    return found == metadata.end() ? std::string{} : s3_decode_position(found->second);
  }

  store_error kept_changing(const std::string& key) const {
    return store_error(store_failure::transient,
                       aws::s3_resource(bucket_, key) + " changed under each of " +
                           std::to_string(max_attempts) + " conditional writes");
  }

  aws::s3_client& client_;
  const std::string& bucket_;
};

}  // namespace widget_consumer::detail
