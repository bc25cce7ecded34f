// Test support: runs a program (imd) as a child process and reads its standard output.
#ifndef IM_TESTS_SUPPORT_CHILD_PROCESS_H_
#define IM_TESTS_SUPPORT_CHILD_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace im::test {

class ChildProcess {
 public:
  // Starts `argv[0]` with `argv`; stdout is piped, stderr inherited.
  explicit ChildProcess(const std::vector<std::string>& argv);
  ~ChildProcess();  // SIGKILL if still running

  // Reads stdout until a line containing `needle` (returned) or the timeout ("" then).
  std::string WaitForLine(const std::string& needle, int timeout_ms);
  void Signal(int sig);
  // Waits for the exit; the exit status (128+signal when killed), -1 on timeout.
  int Wait(int timeout_ms);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
  bool exited_ = false;
};

// Runs a command to completion and returns its stdout (trailing newline removed).
std::string RunAndCapture(const std::vector<std::string>& argv, int* exit_code);

// A fresh empty directory under /tmp.
std::string MakeTempDir();

}  // namespace im::test

#endif  // IM_TESTS_SUPPORT_CHILD_PROCESS_H_
