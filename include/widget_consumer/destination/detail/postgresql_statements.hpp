#pragma once
// The SQL of postgresql_table_store (postgresql_table.hpp, which says what
// each request does to the tables): each request as a list of statements
// sent together (postgresql_pipeline.hpp), and the fence's advance of a
// widget's position. Values always travel as parameters.

#include <libpq-fe.h>

#include <widget_consumer/concepts.hpp>
#include <widget_consumer/destination/detail/postgresql_pipeline.hpp>
#include <widget_consumer/request.hpp>
#include <widget_consumer/widget.hpp>

#include <boost/json.hpp>

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace widget_consumer::detail {

// A JSON array of [name, value] pairs: one parameter carries them all, so
// a request costs the same few round trips whatever its size.
inline std::string pg_pairs_json(const std::map<std::string, std::string>& pairs) {
  boost::json::array array;
  for (const auto& [name, value] : pairs)
    array.push_back(boost::json::array{boost::json::string(name), boost::json::string(value)});
  return boost::json::serialize(array);
}

inline constexpr const char* pg_insert_attributes_sql =
    "INSERT INTO widget_attributes (widget_id, name, value) "
    "SELECT $1, pair->>0, pair->>1 FROM jsonb_array_elements($2::jsonb) AS pair "
    "ON CONFLICT (widget_id, name) DO UPDATE SET value = EXCLUDED.value";
// An update's: only while its widget ($1, owner $3) is there, which means
// that its UPDATE, earlier in the same transaction, found it.
inline constexpr const char* pg_insert_attributes_where_found_sql =
    "INSERT INTO widget_attributes (widget_id, name, value) "
    "SELECT $1, pair->>0, pair->>1 FROM jsonb_array_elements($2::jsonb) AS pair "
    "WHERE EXISTS (SELECT 1 FROM widgets WHERE id = $1 AND owner = $3) "
    "ON CONFLICT (widget_id, name) DO UPDATE SET value = EXCLUDED.value";
inline constexpr const char* pg_delete_attributes_where_found_sql =
    "DELETE FROM widget_attributes WHERE widget_id = $1 AND name IN "
    "(SELECT jsonb_array_elements_text($2::jsonb)) "
    "AND EXISTS (SELECT 1 FROM widgets WHERE id = $1 AND owner = $3)";

// A request's statements, without BEGIN or COMMIT, sent in one round
// trip (detail/postgresql_pipeline.hpp), and which of them says by its row
// count whether the widget was there (none for a create, which always
// applies).
struct pg_request_statements {
  std::vector<pg_statement> statements;
  std::optional<std::size_t> found_by;
};

// Advances the widget's position to $2 when it moves forward (position.hpp:
// no stored position, another kind, a later one compared bytewise as C++
// compares them, or another of the tie group $4); $3 = "t" for a delete, whose row is then its
// tombstone. The row is locked either way until the transaction ends, so
// an empty answer (stale) stays true until the rollback.
inline constexpr const char* pg_advance_position_sql =
    "INSERT INTO widget_positions AS stored (widget_id, position, deleted_at) "
    "VALUES ($1, $2, CASE WHEN $3::boolean THEN now() END) "
    "ON CONFLICT (widget_id) DO UPDATE SET position = EXCLUDED.position, "
    "deleted_at = EXCLUDED.deleted_at "
    "WHERE stored.position = '' "
    "OR left(stored.position, strpos(stored.position, ':')) COLLATE \"C\" <> "
    "left(EXCLUDED.position, strpos(EXCLUDED.position, ':')) COLLATE \"C\" "
    "OR EXCLUDED.position COLLATE \"C\" > stored.position COLLATE \"C\" "
    "OR ($4 <> '' AND left(stored.position, length($4)) COLLATE \"C\" = $4 COLLATE \"C\" "
    "AND stored.position COLLATE \"C\" <> EXCLUDED.position COLLATE \"C\") "
    "RETURNING 1";

// A fenced create's statements are sent with the fence's advance and the
// COMMIT, before either's answer: each changes nothing unless the widget's
// stored position is the create's own ($5, $2, $3 below), which after the
// advance means it moved forward, or the same create is delivered again over
// its own result (a no-op either way: no later request has applied).
inline constexpr const char* pg_create_widget_sql =
    "INSERT INTO widgets (id, owner, label, description) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, label = EXCLUDED.label, "
    "description = EXCLUDED.description";
inline constexpr const char* pg_create_widget_at_position_sql =
    "INSERT INTO widgets (id, owner, label, description) "
    "SELECT $1::text, $2::text, $3::text, $4::text WHERE EXISTS "
    "(SELECT 1 FROM widget_positions WHERE widget_id = $1 AND position = $5) "
    "ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, label = EXCLUDED.label, "
    "description = EXCLUDED.description";
inline constexpr const char* pg_clear_attributes_at_position_sql =
    "DELETE FROM widget_attributes WHERE widget_id = $1 AND EXISTS "
    "(SELECT 1 FROM widget_positions WHERE widget_id = $1 AND position = $2)";
inline constexpr const char* pg_insert_attributes_at_position_sql =
    "INSERT INTO widget_attributes (widget_id, name, value) "
    "SELECT $1, pair->>0, pair->>1 FROM jsonb_array_elements($2::jsonb) AS pair "
    "WHERE EXISTS (SELECT 1 FROM widget_positions WHERE widget_id = $1 AND position = $3) "
    "ON CONFLICT (widget_id, name) DO UPDATE SET value = EXCLUDED.value";

// at_position: only if the stored position is this (the fenced create's).
inline pg_request_statements pg_create(const widget_request& request,
                                       const std::optional<std::string>& at_position = {}) {
  const widget created = make_widget(request);
  std::map<std::string, std::string> attributes;
  for (const auto& attribute : created.other_attributes)
    attributes[attribute.name] = attribute.value;
  pg_request_statements mine;
  pg_parameters widget_row = {created.widget_id, created.owner, created.label, created.description};
  pg_parameters clear = {created.widget_id};
  pg_parameters insert = {created.widget_id, pg_pairs_json(attributes)};
  if (at_position) {
    widget_row.push_back(*at_position);
    clear.push_back(*at_position);
    insert.push_back(*at_position);
  }
  mine.statements.push_back(
      {at_position ? pg_create_widget_at_position_sql : pg_create_widget_sql, widget_row});
  mine.statements.push_back({at_position ? pg_clear_attributes_at_position_sql
                                         : "DELETE FROM widget_attributes WHERE widget_id = $1",
                             clear});
  if (!attributes.empty())
    mine.statements.push_back(
        {at_position ? pg_insert_attributes_at_position_sql : pg_insert_attributes_sql, insert});
  return mine;
}

inline pg_request_statements pg_update(const widget_request& request) {
  // The request's attributes in order, the last mention of a name winning,
  // as applying them one after another would.
  std::map<std::string, std::string> set;
  std::set<std::string> removed;
  for (const auto& attribute : request.other_attributes) {
    if (!attribute.value)
      continue;
    if (attribute.value->empty()) {
      set.erase(attribute.name);
      removed.insert(attribute.name);
    } else {
      removed.erase(attribute.name);
      set[attribute.name] = *attribute.value;
    }
  }
  // $3/$5: "t" to change the column, then its new value (NULL removes it).
  auto column_change = [](const std::optional<std::string>& value) {
    return std::pair<std::optional<std::string>, std::optional<std::string>>{
        value ? "t" : "f", value && !value->empty() ? value : std::nullopt};
  };
  const auto label = column_change(request.label);
  const auto description = column_change(request.description);
  pg_request_statements mine{.statements = {}, .found_by = 0};
  mine.statements.push_back(
      {"UPDATE widgets SET label = CASE WHEN $3::boolean THEN $4::text ELSE label END, "
       "description = CASE WHEN $5::boolean THEN $6::text ELSE description END "
       "WHERE id = $1 AND owner = $2",
       {request.widget_id, request.owner, label.first, label.second, description.first,
        description.second}});
  // The attribute statements are sent with the UPDATE, before its answer:
  // each changes nothing unless the UPDATE found the widget (and a row for
  // a widget that is not there would break the foreign key).
  if (!removed.empty()) {
    boost::json::array names;
    for (const auto& name : removed)
      names.push_back(boost::json::string(name));
    mine.statements.push_back({pg_delete_attributes_where_found_sql,
                               {request.widget_id, boost::json::serialize(names), request.owner}});
  }
  if (!set.empty())
    mine.statements.push_back({pg_insert_attributes_where_found_sql,
                               {request.widget_id, pg_pairs_json(set), request.owner}});
  return mine;
}

// The owner is compared exactly.
inline pg_request_statements pg_remove(const widget_request& request) {
  pg_request_statements mine{.statements = {}, .found_by = 0};
  mine.statements.push_back(
      {"DELETE FROM widgets WHERE id = $1 AND owner = $2", {request.widget_id, request.owner}});
  return mine;
}

inline pg_request_statements pg_statements_of(const widget_request& request) {
  switch (request.type) {
    case request_type::create:
      return pg_create(request);
    case request_type::update:
      return pg_update(request);
    case request_type::remove:
      return pg_remove(request);
  }
  throw store_error(store_failure::bad_request, "unknown request type");
}

// The outcome the results say, `offset` being where the request's own
// statements begin among them.
inline apply_outcome pg_outcome_of(const pg_request_statements& request,
                                   const std::vector<pg_result>& results, std::size_t offset) {
  if (!request.found_by)
    return apply_outcome::applied;
  return std::string_view(PQcmdTuples(results.at(offset + *request.found_by).get())) == "1"
             ? apply_outcome::applied
             : apply_outcome::not_found;
}

}  // namespace widget_consumer::detail
