#pragma once
// The error that retrying cannot fix: the request bucket, queue or table does
// not exist, the credentials are missing, wrong or expired and cannot be
// refreshed, access is denied. A policy throws it from its start-up check
// (concepts.hpp, startup_checking) or from poll(); the consumer then stops
// at once and says why, instead of polling the same failure again and again.
// The message names what was being reached, how (region, endpoint, which
// credentials; never a secret) and what to check.

#include <stdexcept>

namespace widget_consumer {

class unrecoverable_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace widget_consumer
