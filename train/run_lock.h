// One run per run folder: `serpent train` holds an exclusive lock on <run folder>/.lock for as
// long as it runs, so a second run of the same name stops at once instead of writing into the
// same files. The lock is the kernel's (flock), so it goes with the process however that ends: a
// run killed with SIGKILL leaves no stale lock, only the file, whose pid line is informative.
#pragma once

#include <string>

namespace serpent {

class RunFolderLock {
 public:
  // Creates the folder if needed and takes the lock; throws serpent::Error naming the folder and
  // the pid of the process that holds it.
  explicit RunFolderLock(const std::string& run_dir);
  ~RunFolderLock();
  RunFolderLock(const RunFolderLock&) = delete;
  RunFolderLock& operator=(const RunFolderLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace serpent
