// Names Ferry's threads (Linux: at most 15 characters, longer names are cut), so that
// `top -H`, `ps -L`, profilers and the benchmarks can tell them apart. Every thread Ferry
// starts is named "ferry.<role>" (docs/architecture.md, "Threads").
#pragma once

#include <pthread.h>

#include <cstring>
#include <thread>

namespace ferry {

namespace detail {

inline void set_thread_name(pthread_t t, const char* name) {
  char buf[16];
  std::strncpy(buf, name, sizeof buf - 1);
  buf[sizeof buf - 1] = '\0';
  ::pthread_setname_np(t, buf);
}

} // namespace detail

/// Names `t` from the thread that started it: named before anyone can look.
inline void name_thread(std::thread& t, const char* name) {
  detail::set_thread_name(t.native_handle(), name);
}

/// Names the calling thread (for a thread Ferry does not start itself, such as a detached
/// actor's).
inline void name_this_thread(const char* name) {
  detail::set_thread_name(::pthread_self(), name);
}

} // namespace ferry
