// widget_consumer: the course's consumer. Picks its source (-rb, -rq or
// --request-dir) and its store (-wb, -dwt or --widget-dir) from the command
// line; every combination is compiled in.

#include "common/consumer_program.hpp"

int main(int argc, char* argv[]) {
  return examples::program_main(argc, argv, "widget_consumer", examples::run_any_combination);
}
