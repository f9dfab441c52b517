// A test-only shim, preloaded (LD_PRELOAD) into a cifar10 process by the
// kill tests: rename() of a path that contains $CIFAR10_HOLD_RENAME stops
// with the temporary file complete and fsync'ed but not yet renamed -- the
// instant a crash would do most harm -- says so on stderr and waits, so
// the test can SIGKILL it there. The wait is bounded (30 s), so a
// forgotten variable slows a run but never hangs it; a handled signal
// (SIGTERM from a launcher stopping the group) does not cut it short, or
// the held write would be finished by the very stop under test. Production code
// carries no hook for this: the shim wraps libc's rename.
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" int rename(const char* from, const char* to) {
  using Rename = int (*)(const char*, const char*);
  static const auto real = reinterpret_cast<Rename>(::dlsym(RTLD_NEXT, "rename"));
  const char* match = std::getenv("CIFAR10_HOLD_RENAME");
  if (match != nullptr && *match != '\0' && std::strstr(to, match) != nullptr) {
    std::fprintf(stderr, "hold_rename: holding %s before rename\n", from);
    std::fflush(stderr);
    unsigned left = 30;
    while (left > 0) left = ::sleep(left);
  }
  return real(from, to);
}
