// Names the calling thread (at most 15 characters), as `top -H`, perf and gdb show it.
#ifndef IM_BASE_THREAD_NAME_H_
#define IM_BASE_THREAD_NAME_H_

#include <pthread.h>

namespace im::internal {

inline void NameThisThread(const char* name) { pthread_setname_np(pthread_self(), name); }

// Names the calling thread once (for pool threads that only run posted work).
inline void NameThisThreadOnce(const char* name) {
  thread_local bool named = false;
  if (!named) {
    named = true;
    NameThisThread(name);
  }
}

}  // namespace im::internal

#endif  // IM_BASE_THREAD_NAME_H_
