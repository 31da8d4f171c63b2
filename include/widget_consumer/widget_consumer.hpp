#pragma once
// Umbrella header: everything a program needs to run a consumer.

#include "request.hpp"
#include "widget.hpp"
