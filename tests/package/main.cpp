// Compiles against the installed headers and links the dependencies they
// bring; exits 0 when the installed package is usable.
#include <widget_consumer/widget_consumer.hpp>

#include <iostream>

int main() {
  widget_consumer::widget widget{.widget_id = "w-1", .owner = "Mary Anne"};
  std::cout << "package_user: widget " << widget.widget_id << " of " << widget.owner << '\n';
  return widget.widget_id == "w-1" ? 0 : 1;
}
