#pragma once
// The tables of postgresql_table_store: the statements that create them and
// the check that tables found in the database have the columns and primary
// keys the store writes. Extra nullable columns are allowed, so a user may
// add their own.

#include <widget_consumer/destination/detail/postgresql_connection.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace widget_consumer::detail {

// The course layout: the store's widgets, whether it fences or not.
inline constexpr const char* pg_widget_tables_sql[] = {
    "CREATE TABLE IF NOT EXISTS widgets (id text PRIMARY KEY, owner text NOT NULL, "
    "label text, description text)",
    "CREATE TABLE IF NOT EXISTS widget_attributes ("
    "widget_id text NOT NULL REFERENCES widgets (id) ON DELETE CASCADE, "
    "name text NOT NULL, value text NOT NULL, PRIMARY KEY (widget_id, name))"};

// Fencing's side table: a widget's position, and deleted_at set while the
// row is a delete's tombstone. The partial index keeps the clean-up of old
// tombstones from reading the whole table.
inline constexpr const char* pg_positions_table_sql =
    "CREATE TABLE IF NOT EXISTS widget_positions (widget_id text PRIMARY KEY, "
    "position text NOT NULL, deleted_at timestamptz)";
inline constexpr const char* pg_positions_index_sql =
    "CREATE INDEX IF NOT EXISTS widget_positions_tombstones ON widget_positions (deleted_at) "
    "WHERE deleted_at IS NOT NULL";

struct pg_column {
  std::string table;
  std::string name;
  std::string type;  // as information_schema.columns.data_type names it
  bool not_null = false;
  bool key = false;  // part of the table's primary key
};

inline const std::vector<pg_column>& pg_widget_columns() {
  static const std::vector<pg_column> columns = {
      {"widgets", "id", "text", true, true},
      {"widgets", "owner", "text", true, false},
      {"widgets", "label", "text", false, false},
      {"widgets", "description", "text", false, false},
      {"widget_attributes", "widget_id", "text", true, true},
      {"widget_attributes", "name", "text", true, true},
      {"widget_attributes", "value", "text", true, false}};
  return columns;
}

inline const std::vector<pg_column>& pg_position_columns() {
  static const std::vector<pg_column> columns = {
      {"widget_positions", "widget_id", "text", true, true},
      {"widget_positions", "position", "text", true, false},
      {"widget_positions", "deleted_at", "timestamp with time zone", false, false}};
  return columns;
}

// What is wrong with the tables of `wanted` in the current schema, or
// nullopt when they are as the store writes them and this user may select,
// insert, update and delete in them.
inline std::optional<std::string> pg_tables_problem(PGconn* connection, const pg_redactor& redact,
                                                    const std::vector<pg_column>& wanted) {
  std::vector<std::string> tables;
  for (const auto& column : wanted)
    if (tables.empty() || tables.back() != column.table)
      tables.push_back(column.table);
  std::string table_array = "{";
  for (const auto& table : tables)
    table_array += (table_array.size() > 1 ? "," : "") + table;
  table_array += "}";
  const auto columns = pg_execute(
      connection,
      "SELECT c.table_name, c.column_name, c.data_type, c.is_nullable, "
      "EXISTS (SELECT 1 FROM information_schema.table_constraints t "
      "JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name, "
      "table_name) WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_schema = c.table_schema "
      "AND t.table_name = c.table_name AND k.column_name = c.column_name) "
      "FROM information_schema.columns c WHERE c.table_schema = current_schema() "
      "AND c.table_name = ANY ($1::text[])",
      {table_array}, redact, PGRES_TUPLES_OK);
  struct found_column {
    std::string type, nullable, key;
  };
  std::map<std::string, found_column> found;
  for (int r = 0; r < PQntuples(columns.get()); ++r)
    found[std::string(PQgetvalue(columns.get(), r, 0)) + "." + PQgetvalue(columns.get(), r, 1)] = {
        PQgetvalue(columns.get(), r, 2), PQgetvalue(columns.get(), r, 3),
        PQgetvalue(columns.get(), r, 4)};
  for (const auto& column : wanted) {
    const std::string name = column.table + "." + column.name;
    const auto it = found.find(name);
    if (it == found.end())
      return "the column " + name + " is missing";
    if (it->second.type != column.type)
      return "the column " + name + " is " + it->second.type + ", not " + column.type;
    if ((it->second.key == "t") != column.key)
      return "the column " + name + (column.key ? " is not" : " is") +
             " part of its table's primary key";
    if (column.not_null && it->second.nullable != "NO")
      return "the column " + name + " allows NULL";
    found.erase(it);
  }
  // What is left is not ours: a key column there would make our upserts'
  // ON CONFLICT name no unique index.
  for (const auto& [name, each] : found)
    if (each.key == "t")
      return "the column " + name + " is part of its table's primary key";
  const auto allowed = pg_execute(connection,
                                  "SELECT bool_and(has_table_privilege(t, 'SELECT, INSERT, "
                                  "UPDATE, DELETE')) FROM unnest($1::text[]) AS t",
                                  {table_array}, redact, PGRES_TUPLES_OK);
  if (std::string_view(PQgetvalue(allowed.get(), 0, 0)) != "t") {
    std::string names;
    for (const auto& table : tables)
      names += (names.empty() ? "" : tables.size() > 2 ? ", " : " and ") + table;
    return "this user may not select, insert, update and delete in " + names;
  }
  return std::nullopt;
}

}  // namespace widget_consumer::detail
