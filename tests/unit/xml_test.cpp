#include "widget_consumer/aws/xml.hpp"

#include <gtest/gtest.h>

#include <string>

namespace aws = widget_consumer::aws;

namespace {

constexpr const char* listing = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>requests</Name>
  <Prefix></Prefix>
  <KeyCount>3</KeyCount>
  <MaxKeys>1000</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents>
    <Key>1612306368338</Key>
    <LastModified>2021-02-02T22:52:48.000Z</LastModified>
    <ETag>&quot;6805f2cfc46c0f04559748bb039d69ae&quot;</ETag>
    <Size>434234</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <Key>a &amp; b  two spaces.json</Key>
    <Size>12</Size>
  </Contents>
  <Contents>
    <Key><![CDATA[<cdata>]]></Key>
    <Size>0</Size>
  </Contents>
  <!-- a comment -->
</ListBucketResult>)";

}  // namespace

TEST(Xml, ListObjectsV2) {
  const auto doc = aws::xml_document::parse(listing);
  const auto root = doc.root();
  EXPECT_EQ(root.name(), "ListBucketResult");
  EXPECT_EQ(root.attribute("xmlns"), "http://s3.amazonaws.com/doc/2006-03-01/");
  EXPECT_EQ(root.text_or("IsTruncated"), "true");
  EXPECT_EQ(root.find_text("NextContinuationToken"),
            "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
  EXPECT_EQ(root.find_text("Prefix"), "");
  EXPECT_FALSE(root.find_text("ContinuationToken"));
  EXPECT_EQ(root.text_or("StartAfter", "none"), "none");

  const auto contents = root.children("Contents");
  ASSERT_EQ(contents.size(), 3u);
  EXPECT_EQ(contents[0].text_or("Key"), "1612306368338");
  EXPECT_EQ(contents[0].text_or("ETag"), "\"6805f2cfc46c0f04559748bb039d69ae\"");
  EXPECT_EQ(contents[0].text_or("Size"), "434234");
  // Entities decoded, inner whitespace kept exactly.
  EXPECT_EQ(contents[1].text_or("Key"), "a & b  two spaces.json");
  EXPECT_EQ(contents[2].text_or("Key"), "<cdata>");
  EXPECT_EQ(root.child("Contents/Key")->text(), "1612306368338");  // the first one
}

TEST(Xml, DeleteObjectsResult) {
  const auto doc = aws::xml_document::parse(
      "<DeleteResult><Deleted><Key>a</Key></Deleted><Error><Key>b</Key><Code>AccessDenied"
      "</Code><Message>Access Denied</Message></Error><Deleted><Key>c</Key></Deleted>"
      "</DeleteResult>");
  const auto deleted = doc.root().children("Deleted");
  ASSERT_EQ(deleted.size(), 2u);
  EXPECT_EQ(deleted[1].text_or("Key"), "c");
  const auto errors = doc.root().children("Error");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].text_or("Code"), "AccessDenied");
  EXPECT_EQ(doc.root().children().size(), 3u);
}

TEST(Xml, DotsInNamesAreNotPathSeparators) {
  const auto doc = aws::xml_document::parse("<a><b.c>x</b.c></a>");
  EXPECT_EQ(doc.root().find_text("b.c"), "x");
}

TEST(Xml, NodesSurviveAMove) {
  auto doc = aws::xml_document::parse("<a><b>x</b></a>");
  const auto node = doc.root().child("b");
  const auto moved = std::move(doc);
  EXPECT_EQ(node->text(), "x");
  EXPECT_EQ(moved.root().text_or("b"), "x");
}

TEST(Xml, MalformedInputThrowsXmlError) {
  for (const char* text : {"", "   ", "not xml", "<a>", "<a><b></a>", "<a x=1/>",
                           "<?xml version=\"1.0\"?>", "<!-- only -->", "\x01\x02"}) {
    EXPECT_THROW(aws::xml_document::parse(text), aws::xml_error) << '"' << text << '"';
  }
  try {
    aws::xml_document::parse("<a>\n<b></a>");
    FAIL();
  } catch (const aws::xml_error& e) {
    EXPECT_NE(std::string(e.what()).find("malformed XML"), std::string::npos) << e.what();
  }
}

// A closing tag must name the element it closes. An unknown entity stays as
// written: it cannot misplace data in a well-formed S3 answer.
TEST(Xml, ClosingTagsAreCheckedUnknownEntitiesKept) {
  EXPECT_THROW(aws::xml_document::parse("<a>x</b>"), aws::xml_error);
  EXPECT_EQ(aws::xml_document::parse("<a>&bogus;</a>").root().text(), "&bogus;");
}

// Whitespace is data in an S3 key; indentation between elements is not.
TEST(Xml, WhitespaceOnlyTextIsKeptIndentationIsNot) {
  const auto doc = aws::xml_document::parse("<a>\n  <Key>   </Key>\n  <Key> x </Key>\n</a>");
  const auto keys = doc.root().children("Key");
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].text(), "   ");
  EXPECT_EQ(keys[1].text(), " x ");
  EXPECT_EQ(doc.root().children().size(), 2u);
}

// Text split by a comment or a CDATA section is one text, as XML reads it.
TEST(Xml, TextAcrossCommentsAndCdataIsJoined) {
  const auto doc = aws::xml_document::parse("<a><k>x<!-- c -->y<![CDATA[<z>]]>&amp;</k></a>");
  EXPECT_EQ(doc.root().text_or("k"), "xy<z>&");
}

TEST(Xml, DeepPathsAndMissingSegments) {
  const auto doc = aws::xml_document::parse("<a><b><c><d>deep</d></c></b><b><x>2</x></b></a>");
  EXPECT_EQ(doc.root().find_text("b/c/d"), "deep");
  EXPECT_FALSE(doc.root().find_text("b/x"));  // only the first <b> is followed
  EXPECT_FALSE(doc.root().find_text("b/c/d/e"));
  EXPECT_FALSE(doc.root().find_text("q/c"));
  EXPECT_FALSE(doc.root().attribute("none"));
}

TEST(Xml, LimitsAreEnforcedBeforeParsing) {
  aws::xml_limits limits;
  limits.max_depth = 3;
  EXPECT_NO_THROW(aws::xml_document::parse("<a><b><c/></b></a>", limits));
  EXPECT_THROW(aws::xml_document::parse("<a><b><c><d></d></c></b></a>", limits),
               aws::xml_limit_error);
  limits = {};
  limits.max_elements = 3;
  EXPECT_THROW(aws::xml_document::parse("<a><b/><b/><b/></a>", limits), aws::xml_limit_error);
  limits = {};
  limits.max_bytes = 8;
  EXPECT_THROW(aws::xml_document::parse("<a>123456</a>", limits), aws::xml_limit_error);
}

TEST(Xml, TruncatedListingsNeverCrash) {
  const std::string full = listing;
  for (std::size_t cut = 0; cut < full.size(); cut += 7) {
    try {
      const auto doc = aws::xml_document::parse(full.substr(0, cut));
      (void)doc.root().children("Contents");
    } catch (const aws::xml_error&) {
    }
  }
}
