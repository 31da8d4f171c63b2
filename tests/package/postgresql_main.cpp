// Compiles against the installed PostgreSQL store and links libpq through
// WidgetConsumer::postgresql alone; exits 0 when that component is usable.
// It connects to nothing: the store connects when first used.
#include <widget_consumer/destination/postgresql_table.hpp>

#include <widget_consumer/concepts.hpp>

#include <iostream>

int main() {
  static_assert(widget_consumer::widget_store<widget_consumer::postgresql_table_store>);
  widget_consumer::postgresql_table_store store(
      {.connection = "host=127.0.0.1 dbname=widgets", .pool_size = 2});
  std::cout << "package_user_postgresql: a pool of " << store.pool_size() << " connections\n";
  return store.pool_size() == 2 ? 0 : 1;
}
