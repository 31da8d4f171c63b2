#pragma once
// Counts the heap allocations a benchmark's own thread makes, so that each
// benchmark can print how many one iteration costs (the "allocs" column).
//
// malloc, calloc and realloc are interposed, not operator new: libcurl and
// OpenSSL allocate with malloc, and operator new calls malloc too, so one
// count covers the C libraries and the C++ code alike. Each call is passed to
// glibc's own allocator (__libc_malloc and friends). The count is per thread:
// the loopback server of tests/support/ answers on a thread of its own, and
// its allocations are not the client's. Aligned allocations (posix_memalign,
// aligned_alloc) are not counted; none of the code measured here makes them.
//
// Include this from exactly one translation unit of a program: it defines
// malloc for the whole program.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>

extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* pointer, std::size_t size);
}

namespace widget_consumer::benchmarks {

// Trivial, so that it is a plain TLS slot of the executable: reading it
// never allocates, which matters inside malloc.
inline thread_local std::uint64_t thread_allocations = 0;

// Sets the benchmark's "allocs" counter: allocations per iteration, from
// the count taken before the benchmark loop started.
inline void report_allocations(benchmark::State& state, std::uint64_t before) {
  state.counters["allocs"] = benchmark::Counter(static_cast<double>(thread_allocations - before),
                                                benchmark::Counter::kAvgIterations);
}

}  // namespace widget_consumer::benchmarks

extern "C" {

void* malloc(std::size_t size) noexcept {
  ++widget_consumer::benchmarks::thread_allocations;
  return __libc_malloc(size);
}

void* calloc(std::size_t count, std::size_t size) noexcept {
  ++widget_consumer::benchmarks::thread_allocations;
  return __libc_calloc(count, size);
}

// A realloc that moves or grows a block is an allocation like any other;
// one that shrinks or frees is counted all the same, as callers pay for it.
void* realloc(void* pointer, std::size_t size) noexcept {
  ++widget_consumer::benchmarks::thread_allocations;
  return __libc_realloc(pointer, size);
}
}
