// Shared by the libFuzzer targets (fuzz/*_fuzz.cpp, built with
// -DCIFAR10_FUZZ=ON, run by scripts/fuzz.sh).
//
// The parsers refuse bad input by throwing, and that is an expected outcome,
// with one condition: what main() prints must be one printable line.
// UserError and other std::exceptions are printed whole, so a control
// character in one (a line break, or an escape a terminal would obey,
// copied from the hostile input) is a finding; c10::Error is cut to its
// first line by main(), so it may carry LibTorch's backtrace. Everything else -- a crash, a sanitizer report, a
// leak, a run over -timeout, an allocation over -malloc_limit_mb, a broken
// invariant below -- stops the fuzzer and is a finding.
#pragma once
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "common/error.h"

namespace cifar::fuzz {

[[noreturn]] inline void finding(const char* what, const char* detail = "") {
  std::fprintf(stderr, "FUZZ FINDING: %s %s\n", what, detail);
  std::abort();
}

inline void require(bool ok, const char* invariant) {
  if (!ok) finding("invariant broken:", invariant);
}

template <class Parse>
void parse_or_refuse(Parse&& parse) {
  try {
    parse();
  } catch (const c10::Error&) {
    // Cut to one line by main(); expected.
  } catch (const std::exception& e) {
    // DEL is left to main()'s printable() (nlohmann quotes it raw, harmlessly).
    for (const char* c = e.what(); *c; ++c) {
      if (static_cast<unsigned char>(*c) < 0x20) finding("control character in error:", e.what());
    }
  }
}

inline std::string_view as_bytes(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// One intra-op thread: the targets parse, they do not compute, and extra
// threads only make leak checks and timeouts noisier.
inline void init_torch() { torch::set_num_threads(1); }

}  // namespace cifar::fuzz
