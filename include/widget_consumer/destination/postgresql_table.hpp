#pragma once
// postgresql_table_store: widgets in two PostgreSQL tables, through libpq.
// Link WidgetConsumer::postgresql (libpq) to use it; the rest of the library
// does not need libpq.
//
//   widgets           (id text PRIMARY KEY, owner text NOT NULL,
//                      label text, description text)
//   widget_attributes (widget_id text REFERENCES widgets ON DELETE CASCADE,
//                      name text, value text NOT NULL,
//                      PRIMARY KEY (widget_id, name))
//
// Every attribute is its own value, as DynamoDB's layout has it: each can be
// queried, indexed and changed alone, and an update touches only the rows it
// names. NULL is an unset label or description; "" is stored as "".
//
// Semantics are the other stores' (DESIGN.md), one transaction per request,
// so a crash leaves the old widget or the new one, never a mix:
//   create -> upsert the widget row (replacing any, whoever owned it), delete
//             its attribute rows, insert the request's
//   update -> UPDATE ... WHERE id and owner match (no row: not_found, rolled
//             back); "" sets a label/description NULL or deletes an
//             attribute row, a value upserts it, null leaves it alone
//   delete -> DELETE ... WHERE id and owner match; whether a row went is the
//             answer; the attribute rows go with it (ON DELETE CASCADE)
//
// Failures (detail/postgresql_connection.hpp): transient ones (connection
// lost, serialization failure, deadlock, shutdown) are retried once at once
// on a fresh connection, then left to the consumer as store_failure::transient.
// Thread-safe: each lane takes a connection of its own from the pool.

#include <widget_consumer/concepts.hpp>
#include <widget_consumer/destination/detail/postgresql_connection.hpp>
#include <widget_consumer/request.hpp>
#include <widget_consumer/unrecoverable_error.hpp>
#include <widget_consumer/widget.hpp>

#include <boost/json.hpp>

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace widget_consumer {

struct postgresql_store_options {
  // A libpq connection string ("host=db dbname=widgets") or URI
  // ("postgresql://db/widgets"); "" = libpq's defaults and PG* variables.
  std::string connection;
  std::string user;      // "" = from the connection string, PGUSER or the login name
  std::string password;  // "" = from the connection string, PGPASSWORD or ~/.pgpass
  std::size_t pool_size = 4;
  // check_ready() creates the tables when they are missing, instead of only
  // checking them.
  bool create_schema = false;
};

class postgresql_table_store {
 public:
  explicit postgresql_table_store(postgresql_store_options options)
      : pool_(
            detail::pg_settings{
                .conninfo = options.connection, .user = options.user, .password = options.password},
            options.pool_size),
        create_schema_(options.create_schema) {}

  // Before the first request (concepts.hpp, startup_checking): connects, then
  // creates the tables (when asked to) and checks that both have the columns
  // and primary keys this store writes, and that we may write them. What
  // cannot heal (refused login, no such database, wrong tables, no
  // privilege) is unrecoverable_error; a server not reachable yet may heal.
  void check_ready() {
    try {
      check_tables();
    } catch (const store_error& e) {
      if (e.retryable())
        throw;
      throw unrecoverable_error(std::string(e.what()) +
                                "; check the connection (-pdbc), the user and password (-pdbu, "
                                "-pdbp, PGPASSWORD or ~/.pgpass) and the user's privileges");
    }
  }

  apply_outcome apply(const widget_request& request) {
    return with_retry([&](PGconn* connection) {
      switch (request.type) {
        case request_type::create:
          create(connection, request);
          return apply_outcome::applied;
        case request_type::update:
          return update(connection, request);
        case request_type::remove:
          return remove(connection, request);
      }
      throw store_error(store_failure::bad_request, "unknown request type");
    });
  }

  // The stored widget (attributes by name), or nullopt. Throws store_error.
  std::optional<widget> load(std::string_view widget_id) {
    return with_retry([&](PGconn* connection) -> std::optional<widget> {
      const auto row =
          execute(connection, "SELECT owner, label, description FROM widgets WHERE id = $1",
                  {std::string(widget_id)}, PGRES_TUPLES_OK);
      if (PQntuples(row.get()) == 0)
        return std::nullopt;
      auto text = [&](const PGresult* result, int r, int c) -> std::optional<std::string> {
        if (PQgetisnull(result, r, c))
          return std::nullopt;
        return std::string(PQgetvalue(result, r, c),
                           static_cast<std::size_t>(PQgetlength(result, r, c)));
      };
      widget found{.widget_id = std::string(widget_id),
                   .owner = *text(row.get(), 0, 0),
                   .label = text(row.get(), 0, 1),
                   .description = text(row.get(), 0, 2),
                   .other_attributes = {}};
      const auto attributes = execute(connection,
                                      "SELECT name, value FROM widget_attributes "
                                      "WHERE widget_id = $1 ORDER BY name COLLATE \"C\"",
                                      {std::string(widget_id)}, PGRES_TUPLES_OK);
      for (int r = 0; r < PQntuples(attributes.get()); ++r)
        found.other_attributes.push_back(
            {*text(attributes.get(), r, 0), *text(attributes.get(), r, 1)});
      return found;
    });
  }

  // Creates the tables if they are missing (what --pdb-create-schema does).
  void create_schema() {
    with_connection([&](PGconn* connection) {
      create_tables(connection);
      return 0;
    });
  }

  std::size_t pool_size() const noexcept { return pool_.size(); }

 private:
  using parameters = std::vector<std::optional<std::string>>;

  void check_tables() {
    with_connection([&](PGconn* connection) {
      if (create_schema_)
        try {
          create_tables(connection);
        } catch (const store_error& e) {
          if (e.retryable())
            throw;
          // Most often a table of the same name in another shape.
          throw unrecoverable_error("cannot create the PostgreSQL widget tables at " +
                                    describe(connection) + ": " + e.what());
        }
      if (const auto problem = schema_problem(connection))
        throw unrecoverable_error("cannot use the PostgreSQL widget tables at " +
                                  describe(connection) + ": " + *problem +
                                  "; create them with --pdb-create-schema, or see README.md "
                                  "for the schema");
      return 0;
    });
  }

  detail::pg_result execute(PGconn* connection, const char* sql, const parameters& values,
                            ExecStatusType expected = PGRES_COMMAND_OK) {
    return detail::pg_execute(connection, sql, values, pool_.redact(), expected);
  }

  // One attempt on one connection: the connection goes back to the pool
  // only when the attempt ended cleanly (a not_found included).
  template <class Work>
  auto with_connection(Work&& work) -> decltype(work(static_cast<PGconn*>(nullptr))) {
    auto connection = pool_.acquire();
    try {
      auto result = work(connection.get());
      pool_.release(std::move(connection), true);
      return result;
    } catch (...) {
      pool_.release(std::move(connection), false);
      throw;
    }
  }

  // A pooled connection may have died while idle (the server restarted, a
  // backend was terminated): one more attempt at once, on a fresh one.
  template <class Work>
  auto with_retry(Work&& work) -> decltype(work(static_cast<PGconn*>(nullptr))) {
    try {
      return with_connection(work);
    } catch (const store_error& e) {
      if (!e.retryable())
        throw;
    }
    pool_.discard_idle();
    return with_connection(work);
  }

  // BEGIN ... COMMIT around `body`; a failure or a not_found rolls back
  // (the connection is then closed or reused as with_connection decides).
  template <class Body>
  apply_outcome transaction(PGconn* connection, Body&& body) {
    execute(connection, "BEGIN", {});
    const apply_outcome outcome = body();
    execute(connection, outcome == apply_outcome::applied ? "COMMIT" : "ROLLBACK", {});
    return outcome;
  }

  // A JSON array of [name, value] pairs: one parameter carries them all, so
  // a request costs the same few round trips whatever its size.
  static std::string pairs_json(const std::map<std::string, std::string>& pairs) {
    boost::json::array array;
    for (const auto& [name, value] : pairs)
      array.push_back(boost::json::array{boost::json::string(name), boost::json::string(value)});
    return boost::json::serialize(array);
  }

  static constexpr const char* insert_attributes_sql =
      "INSERT INTO widget_attributes (widget_id, name, value) "
      "SELECT $1, pair->>0, pair->>1 FROM jsonb_array_elements($2::jsonb) AS pair "
      "ON CONFLICT (widget_id, name) DO UPDATE SET value = EXCLUDED.value";

  void create(PGconn* connection, const widget_request& request) {
    const widget created = make_widget(request);
    std::map<std::string, std::string> attributes;
    for (const auto& attribute : created.other_attributes)
      attributes[attribute.name] = attribute.value;
    transaction(connection, [&] {
      execute(connection,
              "INSERT INTO widgets (id, owner, label, description) VALUES ($1, $2, $3, $4) "
              "ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, label = EXCLUDED.label, "
              "description = EXCLUDED.description",
              {created.widget_id, created.owner, created.label, created.description});
      execute(connection, "DELETE FROM widget_attributes WHERE widget_id = $1",
              {created.widget_id});
      if (!attributes.empty())
        execute(connection, insert_attributes_sql, {created.widget_id, pairs_json(attributes)});
      return apply_outcome::applied;
    });
  }

  apply_outcome update(PGconn* connection, const widget_request& request) {
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
    auto change = [](const std::optional<std::string>& value) {
      return std::pair<std::optional<std::string>, std::optional<std::string>>{
          value ? "t" : "f", value && !value->empty() ? value : std::nullopt};
    };
    // Pairs, not structured bindings: clang before 16 cannot capture those
    // in the lambda below.
    const auto label = change(request.label);
    const auto description = change(request.description);
    return transaction(connection, [&] {
      const auto updated =
          execute(connection,
                  "UPDATE widgets SET label = CASE WHEN $3::boolean THEN $4::text ELSE label END, "
                  "description = CASE WHEN $5::boolean THEN $6::text ELSE description END "
                  "WHERE id = $1 AND owner = $2",
                  {request.widget_id, request.owner, label.first, label.second, description.first,
                   description.second});
      if (std::string_view(PQcmdTuples(updated.get())) != "1")
        return apply_outcome::not_found;
      if (!removed.empty()) {
        boost::json::array names;
        for (const auto& name : removed)
          names.push_back(boost::json::string(name));
        execute(connection,
                "DELETE FROM widget_attributes WHERE widget_id = $1 AND name IN "
                "(SELECT jsonb_array_elements_text($2::jsonb))",
                {request.widget_id, boost::json::serialize(names)});
      }
      if (!set.empty())
        execute(connection, insert_attributes_sql, {request.widget_id, pairs_json(set)});
      return apply_outcome::applied;
    });
  }

  // One statement is one transaction; the owner is compared exactly.
  apply_outcome remove(PGconn* connection, const widget_request& request) {
    const auto deleted = execute(connection, "DELETE FROM widgets WHERE id = $1 AND owner = $2",
                                 {request.widget_id, request.owner});
    return std::string_view(PQcmdTuples(deleted.get())) == "1" ? apply_outcome::applied
                                                               : apply_outcome::not_found;
  }

  void create_tables(PGconn* connection) {
    execute(connection,
            "CREATE TABLE IF NOT EXISTS widgets (id text PRIMARY KEY, owner text NOT NULL, "
            "label text, description text)",
            {});
    execute(connection,
            "CREATE TABLE IF NOT EXISTS widget_attributes ("
            "widget_id text NOT NULL REFERENCES widgets (id) ON DELETE CASCADE, "
            "name text NOT NULL, value text NOT NULL, PRIMARY KEY (widget_id, name))",
            {});
  }

  // What is wrong with the tables, or nullopt when they are as this store
  // writes them. Extra nullable columns are allowed.
  std::optional<std::string> schema_problem(PGconn* connection) {
    const auto columns = execute(
        connection,
        "SELECT c.table_name, c.column_name, c.data_type, c.is_nullable, "
        "EXISTS (SELECT 1 FROM information_schema.table_constraints t "
        "JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name, "
        "table_name) WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_schema = c.table_schema "
        "AND t.table_name = c.table_name AND k.column_name = c.column_name) "
        "FROM information_schema.columns c WHERE c.table_schema = current_schema() "
        "AND c.table_name IN ('widgets', 'widget_attributes')",
        {}, PGRES_TUPLES_OK);
    struct column {
      std::string type, nullable, key;
    };
    std::map<std::string, column> found;
    for (int r = 0; r < PQntuples(columns.get()); ++r)
      found[std::string(PQgetvalue(columns.get(), r, 0)) + "." + PQgetvalue(columns.get(), r, 1)] =
          {PQgetvalue(columns.get(), r, 2), PQgetvalue(columns.get(), r, 3),
           PQgetvalue(columns.get(), r, 4)};
    // name, nullable, part of the primary key
    static const std::vector<std::tuple<std::string, std::string, std::string>> wanted = {
        {"widgets.id", "NO", "t"},
        {"widgets.owner", "NO", "f"},
        {"widgets.label", "YES", "f"},
        {"widgets.description", "YES", "f"},
        {"widget_attributes.widget_id", "NO", "t"},
        {"widget_attributes.name", "NO", "t"},
        {"widget_attributes.value", "NO", "f"}};
    for (const auto& [name, nullable, key] : wanted) {
      const auto it = found.find(name);
      if (it == found.end())
        return "the column " + name + " is missing";
      if (it->second.type != "text")
        return "the column " + name + " is " + it->second.type + ", not text";
      if (it->second.key != key)
        return "the column " + name + (key == "t" ? " is not" : " is") +
               " part of its table's primary key";
      if (nullable == "NO" && it->second.nullable != "NO")
        return "the column " + name + " allows NULL";
    }
    for (const auto& [name, each] : found)
      if (each.key == "t" && name != "widgets.id" && name != "widget_attributes.widget_id" &&
          name != "widget_attributes.name")
        return "the column " + name + " is part of its table's primary key";
    const auto allowed =
        execute(connection,
                "SELECT has_table_privilege('widgets', 'SELECT, INSERT, UPDATE, DELETE') AND "
                "has_table_privilege('widget_attributes', 'SELECT, INSERT, UPDATE, DELETE')",
                {}, PGRES_TUPLES_OK);
    if (std::string_view(PQgetvalue(allowed.get(), 0, 0)) != "t")
      return std::string("this user may not select, insert, update and delete in both tables");
    return std::nullopt;
  }

  // "127.0.0.1:5432, database widgets, user app": the server as libpq
  // resolved it, never the connection string (it may hold a password).
  static std::string describe(PGconn* connection) {
    return std::string(PQhost(connection)) + ":" + PQport(connection) + ", database " +
           PQdb(connection) + ", user " + PQuser(connection);
  }

  detail::pg_pool pool_;
  bool create_schema_ = false;
};

}  // namespace widget_consumer
