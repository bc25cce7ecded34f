// The scheduler slice a latency-path thread asks for. On Linux 6.12 and later the fair
// scheduler (EEVDF) lets a SCHED_OTHER thread choose its slice (sched_setattr's
// sched_runtime, 0.1-100 ms): a shorter slice gives an earlier deadline, so a thread that wakes
// to hand a message on runs sooner on a busy CPU, at the same CPU share over time. Older
// kernels ignore the value.
#ifndef IM_BASE_THREAD_SLICE_H_
#define IM_BASE_THREAD_SLICE_H_

#include <cstdint>

namespace im::internal {

// Asks for a slice of `us` microseconds (clamped to the kernel's 100..100000) for the calling
// thread, keeping its policy and nice value; 0 asks for nothing. False when the kernel refused
// (e.g. a seccomp filter without sched_setattr); nothing else changes then.
bool RequestThreadSlice(uint32_t us);

// The slice thread `tid` (0: the calling thread) of this process has now, in microseconds; 0
// when the kernel does not say (before 6.12, or not Linux).
uint32_t ThreadSliceUs(int tid = 0);

}  // namespace im::internal

#endif  // IM_BASE_THREAD_SLICE_H_
