#include "widget_consumer/aws/crypto.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace {

using namespace widget_consumer::aws;

TEST(crypto, sha256_known_answers) {  // FIPS 180-2 examples
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(crypto, hmac_sha256_rfc4231) {
  EXPECT_EQ(to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  const std::string key(131, '\xaa');  // longer than the block: hashed first
  EXPECT_EQ(to_hex(hmac_sha256(key, "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(crypto, hmac_with_an_empty_key_after_another_key) {  // RFC 2104 with K = ""
  (void)hmac_sha256("Jefe", "what do ya want for nothing?");
  EXPECT_EQ(to_hex(hmac_sha256(std::string_view{}, "")),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(crypto, hmac_accepts_a_binary_key_with_zero_bytes) {
  sha256_digest key{};
  EXPECT_EQ(hmac_sha256(key, "x"), hmac_sha256(std::string(32, '\0'), "x"));
}

TEST(crypto, md5_and_base64_give_content_md5) {
  EXPECT_EQ(to_hex(md5("")), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(base64_encode(md5("")), "1B2M2Y8AsgTpgAmY7PhCfg==");
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

}  // namespace
