#pragma once
// A read-only facade over Boost.PropertyTree's XML reader for the few XML
// documents the AWS layer reads: S3 ListObjectsV2 / DeleteObjects results, SQS
// query responses and error bodies. A real parser, never string search, so
// entities (&amp;), CDATA and element order are handled the way XML says.
//
// Malformed input throws xml_error (a std::runtime_error); nothing here
// asserts or crashes on bad bytes. The reader is lenient in two ways that
// cannot misread a well-formed answer: a closing tag's name is not checked
// against its element, and unknown entities stay as written. Text is kept exactly as sent (no
// whitespace trimming): S3 keys may legitimately contain runs of spaces.

#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <sstream>
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

/// The parser below recurses once per nesting level and allocates a tree node
/// per element (a few hundred bytes), so a hostile or broken answer could run
/// it into the stack limit or make it allocate far more than the body's size.
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
/// ("Contents/Key"); S3 element names contain no '/', but may contain '.',
/// which is why '.' (PropertyTree's default separator) is not used.
class xml_node {
 public:
  /// The Boost.PropertyTree node a view reads.
  using tree = boost::property_tree::ptree;

  /// A view of `node`, an element named `name`; the node must outlive it.
  xml_node(std::string name, const tree* node) : name_(std::move(name)), node_(node) {}

  /// The element's name.
  const std::string& name() const noexcept { return name_; }

  /// The element's own character data (empty for an element with only children).
  const std::string& text() const noexcept { return node_->data(); }

  /// The first element at `path` below this one; nullopt when there is none.
  std::optional<xml_node> child(std::string_view path) const {
    const auto found = node_->get_child_optional(make_path(path));
    if (!found)
      return std::nullopt;
    return xml_node(last_segment(path), &*found);
  }

  /// The text at `path`, or nullopt when no such element exists.
  std::optional<std::string> find_text(std::string_view path) const {
    const auto found = node_->get_child_optional(make_path(path));
    if (!found)
      return std::nullopt;
    return found->data();
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
    for (const auto& [key, value] : *node_)
      if (key == name)
        result.emplace_back(key, &value);
    return result;
  }

  /// Every direct child element (attributes and comments excluded).
  std::vector<xml_node> children() const {
    std::vector<xml_node> result;
    for (const auto& [key, value] : *node_)
      if (key != "<xmlattr>" && key != "<xmlcomment>")
        result.emplace_back(key, &value);
    return result;
  }

  /// An XML attribute of this element; nullopt when absent.
  std::optional<std::string> attribute(std::string_view name) const {
    const auto attrs = node_->get_child_optional("<xmlattr>");
    if (!attrs)
      return std::nullopt;
    const auto found = attrs->get_child_optional(tree::path_type(std::string(name), '/'));
    if (!found)
      return std::nullopt;
    return found->data();
  }

 private:
  static tree::path_type make_path(std::string_view path) {
    return tree::path_type(std::string(path), '/');
  }
  static std::string last_segment(std::string_view path) {
    const auto slash = path.rfind('/');
    return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
  }

  std::string name_;
  const tree* node_;
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
    // PropertyTree reads from a stream; the copy is the price of its API and
    // XML bodies here are small (1,000 keys at most per listing page).
    std::istringstream in{std::string(text)};
    try {
      boost::property_tree::read_xml(in, *doc.tree_, boost::property_tree::xml_parser::no_comments);
    } catch (const boost::property_tree::xml_parser_error& e) {
      throw xml_error("malformed XML: " + e.message() + " at line " + std::to_string(e.line()));
    } catch (const boost::property_tree::ptree_error& e) {
      throw xml_error(std::string("malformed XML: ") + e.what());
    }
    for (const auto& [key, value] : *doc.tree_)
      if (key != "<xmlcomment>" && key != "<xmlattr>") {
        doc.root_name_ = key;
        doc.root_ = &value;
        break;
      }
    if (doc.root_ == nullptr)
      throw xml_error("malformed XML: no root element");
    return doc;
  }

  /// The document element, e.g. `<ListBucketResult>`.
  xml_node root() const { return xml_node(root_name_, root_); }

 private:
  xml_document() : tree_(std::make_unique<xml_node::tree>()) {}

  // Heap-held so that moving the document keeps node pointers valid.
  std::unique_ptr<xml_node::tree> tree_;
  std::string root_name_;
  const xml_node::tree* root_ = nullptr;
};

}  // namespace widget_consumer::aws
