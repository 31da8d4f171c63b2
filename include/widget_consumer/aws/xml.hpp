#pragma once
// A read-only facade over pugixml for the few XML documents the AWS layer
// reads: S3 ListObjectsV2 / DeleteObjects results, STS answers and error
// bodies. A real parser, never string search, so entities (&amp;), CDATA and
// element order are handled the way XML says. pugixml parses the body in one
// pass into a tree held in a few large pages, with names and text pointing
// into its one copy of the body, so a 1,000-key listing costs a handful of
// allocations where a tree of strings (Boost.PropertyTree) cost one per node.
//
// Malformed input throws xml_error (a std::runtime_error); nothing here
// asserts or crashes on bad bytes. A closing tag must name its element;
// unknown entities stay as written, which cannot misread a well-formed
// answer. Text is kept exactly as sent (no whitespace trimming): S3 keys may
// legitimately be runs of spaces.

#include <pugixml.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace widget_consumer::aws {

class xml_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A document over xml_limits: well-formed or not, it is not an AWS answer.
class xml_limit_error : public xml_error {
 public:
  using xml_error::xml_error;
};

/// The parser allocates a tree node per element and attribute, so a hostile or
/// broken answer could make it allocate far more than the body's size; the
/// depth limit keeps any walk over the tree, ours or a caller's, shallow.
/// AWS documents are shallow (depth 4) and small (a 1,000-key listing has some
/// 10,000 elements), so these limits leave a wide margin.
struct xml_limits {
  std::size_t max_bytes = std::size_t{16} << 20;  ///< the longest body parsed
  std::size_t max_depth = 64;                     ///< the deepest nesting of elements
  std::size_t max_elements = 200'000;             ///< the most elements in one document
};

namespace detail {

// Counts nesting and elements without building anything. Comments, CDATA,
// processing instructions, declarations and quoted attribute values are
// skipped, so it never overcounts a well-formed document; on a malformed one
// it stops where the parser will fail anyway.
inline void check_xml_limits(std::string_view text, const xml_limits& limits) {
  if (text.size() > limits.max_bytes)
    throw xml_limit_error("XML document of " + std::to_string(text.size()) +
                          " bytes, over the limit of " + std::to_string(limits.max_bytes));
  std::size_t depth = 0;
  std::size_t elements = 0;
  auto skip_past = [&](std::size_t from, std::string_view end) {
    const auto found = text.find(end, from);
    return found == std::string_view::npos ? text.size() : found + end.size();
  };
  std::size_t i = 0;
  while ((i = text.find('<', i)) != std::string_view::npos) {
    const auto rest = text.substr(i);
    if (rest.starts_with("<!--")) {
      i = skip_past(i + 4, "-->");
    } else if (rest.starts_with("<![CDATA[")) {
      i = skip_past(i + 9, "]]>");
    } else if (rest.starts_with("<?")) {
      i = skip_past(i + 2, "?>");
    } else if (rest.starts_with("<!")) {
      i = skip_past(i + 2, ">");
    } else if (rest.starts_with("</")) {
      depth -= depth > 0 ? 1 : 0;
      i += 2;
    } else {
      if (++elements > limits.max_elements)
        throw xml_limit_error("XML document with more than " + std::to_string(limits.max_elements) +
                              " elements");
      std::size_t j = i + 1;
      for (char quote = 0; j < text.size(); ++j) {
        const char c = text[j];
        if (quote != 0)
          quote = c == quote ? 0 : quote;
        else if (c == '"' || c == '\'')
          quote = c;
        else if (c == '>')
          break;
      }
      if (j >= text.size())
        return;  // an unterminated tag: the parser reports it
      if (text[j - 1] != '/' && ++depth > limits.max_depth)
        throw xml_limit_error("XML nested deeper than " + std::to_string(limits.max_depth) +
                              " levels");
      i = j + 1;
    }
  }
}

}  // namespace detail

/// A view of one element inside an xml_document; valid while the document
/// lives. Paths are element names separated by '/', relative to this element
/// ("Contents/Key"); S3 element names contain no '/', but may contain '.'.
class xml_node {
 public:
  /// A view of pugixml's element `node`.
  explicit xml_node(pugi::xml_node node) noexcept : node_(node) {}

  /// The element's name, e.g. "Contents".
  std::string_view name() const noexcept { return node_.name(); }

  /// The element's own character data, its text and CDATA sections joined
  /// (empty for an element with only children).
  std::string text() const {
    std::string result;
    for (auto part = node_.first_child(); part; part = part.next_sibling())
      if (part.type() == pugi::node_pcdata || part.type() == pugi::node_cdata)
        result += part.value();
    return result;
  }

  /// The first element at `path` below this one; nullopt when there is none.
  std::optional<xml_node> child(std::string_view path) const {
    const auto found = find(path);
    if (!found)
      return std::nullopt;
    return xml_node(found);
  }

  /// The text at `path`, or nullopt when no such element exists.
  std::optional<std::string> find_text(std::string_view path) const {
    const auto found = find(path);
    if (!found)
      return std::nullopt;
    return xml_node(found).text();
  }

  /// The text at `path`, or `fallback` when there is no such element.
  std::string text_or(std::string_view path, std::string fallback = {}) const {
    auto found = find_text(path);
    return found ? std::move(*found) : std::move(fallback);
  }

  /// Every direct child named `name`, in document order (repeated elements
  /// such as ListObjectsV2's `<Contents>` or DeleteObjects' `<Deleted>`).
  std::vector<xml_node> children(std::string_view name) const {
    std::vector<xml_node> result;
    for (auto element = node_.first_child(); element; element = element.next_sibling())
      if (element.type() == pugi::node_element && name == element.name())
        result.emplace_back(element);
    return result;
  }

  /// Every direct child element (text and CDATA excluded).
  std::vector<xml_node> children() const {
    std::vector<xml_node> result;
    for (auto element = node_.first_child(); element; element = element.next_sibling())
      if (element.type() == pugi::node_element)
        result.emplace_back(element);
    return result;
  }

  /// An XML attribute of this element; nullopt when absent.
  std::optional<std::string> attribute(std::string_view name) const {
    for (auto found = node_.first_attribute(); found; found = found.next_attribute())
      if (name == found.name())
        return std::string(found.value());
    return std::nullopt;
  }

 private:
  // pugixml 1.13 (Debian 12) looks children up by C string only; walking
  // them by hand takes a string_view without copying the path.
  pugi::xml_node find(std::string_view path) const {
    auto node = node_;
    while (node) {
      const auto slash = path.find('/');
      const auto segment = path.substr(0, slash);
      auto element = node.first_child();
      while (element && !(element.type() == pugi::node_element && segment == element.name()))
        element = element.next_sibling();
      node = element;
      if (slash == std::string_view::npos)
        break;
      path.remove_prefix(slash + 1);
    }
    return node;
  }

  pugi::xml_node node_;
};

/// A parsed document. Movable; nodes point into it, so keep it alive while
/// using them.
class xml_document {
 public:
  /// Throws xml_error on malformed input or on a document without an element,
  /// xml_limit_error (an xml_error) on one beyond `limits`.
  static xml_document parse(std::string_view text, const xml_limits& limits = {}) {
    detail::check_xml_limits(text, limits);
    xml_document doc;
    // parse_ws_pcdata_single keeps the text of <Key>   </Key> while still
    // dropping the indentation between elements.
    const auto parsed = doc.tree_->load_buffer(text.data(), text.size(),
                                               pugi::parse_default | pugi::parse_ws_pcdata_single,
                                               pugi::encoding_utf8);
    if (!parsed)
      throw xml_error(std::string("malformed XML: ") + parsed.description() + " at offset " +
                      std::to_string(parsed.offset));
    if (!doc.tree_->document_element())
      throw xml_error("malformed XML: no root element");
    return doc;
  }

  /// The document element, e.g. `<ListBucketResult>`.
  xml_node root() const { return xml_node(tree_->document_element()); }

 private:
  xml_document() : tree_(std::make_unique<pugi::xml_document>()) {}

  // Heap-held so that moving the document keeps node pointers valid
  // (pugi::xml_document itself cannot be moved in 1.13 without
  // PUGIXML_HAS_MOVE, and its nodes point into it).
  std::unique_ptr<pugi::xml_document> tree_;
};

}  // namespace widget_consumer::aws
