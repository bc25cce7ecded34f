// Names the calling thread (at most 15 characters), as `top -H`, perf and gdb show it, and
// asks for the scheduler slice of the latency path's threads (base/thread_slice.h).
#ifndef IM_BASE_THREAD_NAME_H_
#define IM_BASE_THREAD_NAME_H_

#include <pthread.h>

#include <cstdint>

#include "base/thread_slice.h"

namespace im::internal {

inline void NameThisThread(const char* name) { pthread_setname_np(pthread_self(), name); }

// Names the calling thread and asks for a slice of `slice_us` (0: the kernel's default).
inline void SetUpThisThread(const char* name, uint32_t slice_us = 0) {
  NameThisThread(name);
  RequestThreadSlice(slice_us);
}

// The same once per thread (for pool threads that only run posted work).
inline void SetUpThisThreadOnce(const char* name, uint32_t slice_us = 0) {
  thread_local bool done = false;
  if (!done) {
    done = true;
    SetUpThisThread(name, slice_us);
  }
}

}  // namespace im::internal

#endif  // IM_BASE_THREAD_NAME_H_
