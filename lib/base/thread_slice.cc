#include "base/thread_slice.h"

#include <algorithm>
#include <cstring>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace im::internal {

#if defined(__linux__) && defined(SYS_sched_setattr) && defined(SYS_sched_getattr)
namespace {

// The kernel's struct sched_attr (include/uapi/linux/sched/types.h); glibc 2.36 has no wrapper.
struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
  uint32_t sched_util_min;
  uint32_t sched_util_max;
};

bool GetAttr(SchedAttr* a, int tid = 0) {
  std::memset(a, 0, sizeof *a);
  return syscall(SYS_sched_getattr, tid, a, sizeof *a, 0) == 0;
}

}  // namespace

bool RequestThreadSlice(uint32_t us) {
  if (us == 0) return true;
  SchedAttr a;
  if (!GetAttr(&a)) return false;
  a.size = sizeof a;
  a.sched_flags = 0;  // the policy, nice and slice only: no utilization clamps, no reset flag
  a.sched_runtime = uint64_t{std::clamp<uint32_t>(us, 100, 100000)} * 1000;
  return syscall(SYS_sched_setattr, 0, &a, 0) == 0;
}

uint32_t ThreadSliceUs(int tid) {
  SchedAttr a;
  if (!GetAttr(&a, tid)) return 0;
  return static_cast<uint32_t>(a.sched_runtime / 1000);
}
#else
bool RequestThreadSlice(uint32_t us) { return us == 0; }
uint32_t ThreadSliceUs(int) { return 0; }
#endif

}  // namespace im::internal
