#pragma once
// Strict UTF-8 validation (RFC 3629): no overlong forms, no surrogates, nothing
// above U+10FFFF. We check bodies ourselves rather than trust the JSON parser,
// so that "not UTF-8" is reported as such and not as a JSON syntax error.

#include <cstddef>
#include <string_view>

namespace widget_consumer::detail {

// Offset of the first byte that starts an invalid sequence, or npos if the
// whole text is valid UTF-8.
inline std::size_t find_invalid_utf8(std::string_view text) noexcept {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  std::size_t i = 0;
  while (i < size) {
    const unsigned char lead = bytes[i];
    if (lead < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = 0;
    unsigned char low = 0x80;  // allowed range of the second byte
    unsigned char high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0)
        low = 0xA0;  // overlong
      if (lead == 0xED)
        high = 0x9F;  // UTF-16 surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0)
        low = 0x90;  // overlong
      if (lead == 0xF4)
        high = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (size - i < length)
      return i;
    if (bytes[i + 1] < low || bytes[i + 1] > high)
      return i;
    for (std::size_t k = 2; k < length; ++k) {
      if ((bytes[i + k] & 0xC0) != 0x80)
        return i;
    }
    i += length;
  }
  return std::string_view::npos;
}

inline bool is_valid_utf8(std::string_view text) noexcept {
  return find_invalid_utf8(text) == std::string_view::npos;
}

// The longest prefix of at most max_bytes that does not cut a UTF-8 sequence
// (text is assumed valid).
inline std::string_view utf8_prefix(std::string_view text, std::size_t max_bytes) noexcept {
  if (text.size() <= max_bytes)
    return text;
  std::size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
    --end;
  return text.substr(0, end);
}

}  // namespace widget_consumer::detail
