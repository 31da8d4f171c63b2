#pragma once
// A request's position: where it stands in its source's order, as one string
// that sorts bytewise in that order. The stores keep each widget's position
// and refuse a request whose position is not newer (fencing, RELIABILITY.md):
// a stalled consumer that wakes after another took its partition over, a
// replayed S3 key, a duplicate SQS delivery or a late create after a delete
// then cannot move a widget backwards.
//
// The encoding, "<kind>:<rest>", with one kind per source:
//   s3:<key>                S3 source: the key; ListObjectsV2 order is the
//                           order the source applies
//   fifo:<40 digits>        SQS FIFO: SequenceNumber, zero-padded (it rises
//                           within a message group, and a group is a widget)
//   std:<16 digits>:<id>    SQS standard: SentTimestamp in ms, zero-padded,
//                           then the message id: last sent wins, and a
//                           duplicate delivery is equal, so not newer
//   dir:<file name>         directory source: the file name
//
// Positions of different kinds do not compare: a store fed by one kind of
// source and then another takes the first request of the new kind as newer
// (moves_forward), so switching sources never freezes a widget. Equal
// positions are not newer: the same request delivered again is a no-op.
// Standard messages sent within one millisecond (a SendMessageBatch) are not
// ordered by their random message ids: among them, any other message is
// newer, so they are applied in the order they arrive, as without the fence
// (position_tie_group).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace widget_consumer {

inline constexpr std::size_t fifo_position_digits = 40;  ///< SequenceNumber: up to 128 bits
/// SentTimestamp in ms, zero-padded to this.
inline constexpr std::size_t standard_position_digits = 16;

namespace detail {

inline std::string zero_padded(std::string_view digits, std::size_t width) {
  return digits.size() >= width ? std::string(digits)
                                : std::string(width - digits.size(), '0') + std::string(digits);
}

inline bool all_digits(std::string_view text) noexcept {
  if (text.empty())
    return false;
  for (const char c : text)
    if (c < '0' || c > '9')
      return false;
  return true;
}

}  // namespace detail

/// The position of an S3 request: its key, whose order is the source's.
inline std::string s3_key_position(std::string_view key) {
  return "s3:" + std::string(key);
}

/// The position of a directory request: its file name, whose order is the source's.
inline std::string file_position(std::string_view name) {
  return "dir:" + std::string(name);
}

/// "" (no position: the request is applied unfenced) when the sequence number
/// is missing or not a number of at most 40 digits.
inline std::string fifo_position(std::string_view sequence_number) {
  if (!detail::all_digits(sequence_number) || sequence_number.size() > fifo_position_digits)
    return {};
  return "fifo:" + detail::zero_padded(sequence_number, fifo_position_digits);
}

/// sent_timestamp: SentTimestamp as SQS gives it (ms since the epoch, as
/// text); "" when it is missing or not a number.
inline std::string standard_position(std::string_view sent_timestamp, std::string_view message_id) {
  if (!detail::all_digits(sent_timestamp) || sent_timestamp.size() > standard_position_digits ||
      message_id.empty())
    return {};
  return "std:" + detail::zero_padded(sent_timestamp, standard_position_digits) + ":" +
         std::string(message_id);
}

/// "s3:" of "s3:requests/1.json"; "" when the text has no kind.
inline std::string_view position_kind(std::string_view position) noexcept {
  const auto colon = position.find(':');
  return colon == std::string_view::npos ? std::string_view{} : position.substr(0, colon + 1);
}

/// The positions no order is known within: "std:<16 digits>:" of a standard
/// message (one millisecond); "" for the other kinds, which are all ordered.
inline std::string_view position_tie_group(std::string_view position) noexcept {
  constexpr std::string_view standard = "std:";
  if (!position.starts_with(standard) ||
      position.size() <= standard.size() + standard_position_digits ||
      position[standard.size() + standard_position_digits] != ':')
    return {};
  return position.substr(0, standard.size() + standard_position_digits + 1);
}

/// May a request at `candidate` change a widget stored at `stored`? Yes when
/// either is empty (nothing to compare), when their kinds differ, when both
/// are in one tie group and differ (see the top of this file), or when
/// candidate sorts after stored.
inline bool moves_forward(std::string_view candidate, std::string_view stored) noexcept {
  if (candidate.empty() || stored.empty())
    return true;
  if (position_kind(candidate) != position_kind(stored))
    return true;
  if (const auto group = position_tie_group(candidate); !group.empty() && stored.starts_with(group))
    return candidate != stored;
  return candidate > stored;
}

/// For the log line of a stale request.
inline std::string stale_detail(std::string_view candidate, std::string_view stored) {
  return "position " + std::string(candidate) + " is not newer than the widget's " +
         std::string(stored) + "; nothing changed";
}

}  // namespace widget_consumer
