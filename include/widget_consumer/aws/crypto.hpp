#pragma once
// The hashing SigV4 needs (SHA-256, HMAC-SHA256), plus MD5 and base64 for
// S3's Content-MD5, through OpenSSL 3's EVP interfaces only.

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace widget_consumer::aws {

/// A SHA-256 digest, raw bytes.
using sha256_digest = std::array<unsigned char, 32>;

class crypto_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
struct evp_mac_ctx_deleter {
  void operator()(EVP_MAC_CTX* ctx) const noexcept { EVP_MAC_CTX_free(ctx); }
};
struct evp_md_ctx_deleter {
  void operator()(EVP_MD_CTX* ctx) const noexcept { EVP_MD_CTX_free(ctx); }
};

// Fetching an algorithm is a provider lookup under a lock, and OpenSSL 3 does
// one on every init given a legacy EVP_sha256()-style method: fetch each
// algorithm once per process instead.
inline EVP_MAC* hmac_algorithm() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
  if (mac == nullptr)
    throw crypto_error("OpenSSL: HMAC is not available");
  return mac;
}

inline const EVP_MD* fetched_digest(const char* name) {
  // One fetch per name and process; the names are the few this file uses.
  if (std::string_view(name) == "SHA256") {
    static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return sha256;
  }
  if (std::string_view(name) == "MD5") {
    static EVP_MD* const md5 = EVP_MD_fetch(nullptr, "MD5", nullptr);
    return md5;
  }
  static EVP_MD* const sha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  return sha1;
}

// One digest context per thread, re-initialised for each digest: creating
// and freeing one per call was a third of a signature's cost.
inline EVP_MD_CTX* thread_digest_context() {
  thread_local const std::unique_ptr<EVP_MD_CTX, evp_md_ctx_deleter> ctx(EVP_MD_CTX_new());
  if (!ctx)
    throw crypto_error("OpenSSL: cannot allocate a digest context");
  return ctx.get();
}

// One HMAC-SHA256 context per thread; EVP_MAC_init with a new key re-keys it
// and keeps the digest set once here.
inline EVP_MAC_CTX* thread_hmac_context() {
  thread_local const std::unique_ptr<EVP_MAC_CTX, evp_mac_ctx_deleter> ctx = [] {
    std::unique_ptr<EVP_MAC_CTX, evp_mac_ctx_deleter> made(EVP_MAC_CTX_new(hmac_algorithm()));
    char digest_name[] = "SHA256";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
        OSSL_PARAM_construct_end()};
    if (made && EVP_MAC_CTX_set_params(made.get(), params) != 1)
      made.reset();
    return made;
  }();
  if (!ctx)
    throw crypto_error("OpenSSL: cannot allocate an HMAC context");
  return ctx.get();
}

template <std::size_t N>
std::array<unsigned char, N> digest(const char* algorithm, std::string_view data,
                                    const char* name) {
  std::array<unsigned char, N> out{};
  unsigned int length = 0;
  const EVP_MD* type = fetched_digest(algorithm);
  EVP_MD_CTX* ctx = thread_digest_context();
  if (type == nullptr || EVP_DigestInit_ex2(ctx, type, nullptr) != 1 ||
      EVP_DigestUpdate(ctx, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx, out.data(), &length) != 1 || length != N)
    throw crypto_error(std::string("OpenSSL: ") + name + " failed");
  return out;
}
}  // namespace detail

/// SHA-256 of the bytes (payload hashes, SigV4).
inline sha256_digest sha256(std::string_view data) {
  return detail::digest<32>("SHA256", data, "SHA-256");
}

/// MD5 of the bytes: the Content-MD5 S3 checks a body against.
inline std::array<unsigned char, 16> md5(std::string_view data) {
  return detail::digest<16>("MD5", data, "MD5");
}

/// HMAC-SHA256 of data under key: one step of SigV4's key derivation.
inline sha256_digest hmac_sha256(std::string_view key, std::string_view data) {
  EVP_MAC_CTX* ctx = detail::thread_hmac_context();
  sha256_digest out{};
  std::size_t length = 0;
  // A null key tells a reused context to keep its previous key: an empty key
  // must still be passed as a pointer.
  static constexpr unsigned char no_key = 0;
  const auto* key_bytes =
      key.empty() ? &no_key : reinterpret_cast<const unsigned char*>(key.data());
  if (EVP_MAC_init(ctx, key_bytes, key.size(), nullptr) != 1 ||
      EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1 ||
      EVP_MAC_final(ctx, out.data(), &length, out.size()) != 1 || length != out.size())
    throw crypto_error("OpenSSL: HMAC-SHA256 failed");
  return out;
}

/// HMAC-SHA256 under a key that is itself a digest (the derived SigV4 keys).
inline sha256_digest hmac_sha256(const sha256_digest& key, std::string_view data) {
  return hmac_sha256(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()), data);
}

namespace detail {
// Lower-case hex of a digest in a buffer of the caller's (the signer's
// temporaries), with view() to read it.
template <std::size_t N>
using hex_text = std::array<char, 2 * N>;
using sha256_hex_text = hex_text<32>;

template <std::size_t N>
hex_text<N> hex_chars(const std::array<unsigned char, N>& bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  hex_text<N> out{};
  for (std::size_t i = 0; i < N; ++i) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 0x0f];
  }
  return out;
}

template <std::size_t M>
std::string_view view(const std::array<char, M>& text) noexcept {
  return {text.data(), M};
}

inline sha256_hex_text sha256_hex_chars(std::string_view data) {
  return hex_chars(sha256(data));
}
}  // namespace detail

/// Lower-case hexadecimal of the bytes, as SigV4 writes digests.
template <std::size_t N>
std::string to_hex(const std::array<unsigned char, N>& bytes) {
  return std::string(detail::view(detail::hex_chars(bytes)));
}

/// The lower-case hexadecimal SHA-256 of the bytes: SigV4's payload hash.
inline std::string sha256_hex(std::string_view data) {
  return to_hex(sha256(data));
}

/// The AWS CLI names its SSO token cache files by this (sso.hpp).
inline std::string sha1_hex(std::string_view data) {
  return to_hex(detail::digest<20>("SHA1", data, "SHA-1"));
}

/// Base64 (with padding) of the bytes.
inline std::string base64_encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  if (out.empty())
    return out;
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                     reinterpret_cast<const unsigned char*>(data.data()),
                                     static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(length));
  return out;
}

/// Base64 of a digest (Content-MD5, checksums).
template <std::size_t N>
std::string base64_encode(const std::array<unsigned char, N>& bytes) {
  return base64_encode(std::string_view(reinterpret_cast<const char*>(bytes.data()), N));
}

}  // namespace widget_consumer::aws
