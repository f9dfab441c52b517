#include "common/runtime.h"

#include <dlfcn.h>
#include <sched.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/printable.h"

namespace cifar {

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return 1;
}

int configure_threads(int threads, int cores_share_divisor) {
  const int n = threads > 0 ? threads : std::max(1, usable_cores() / std::max(1, cores_share_divisor));
  at::set_num_threads(n);
  return n;
}

torch::Device resolve_device(const std::string& requested, int local_rank) {
  const bool has_cuda = torch::cuda::is_available();
  if (requested == "cuda" && !has_cuda) {
    throw UserError("--device cuda requested, but no CUDA device is available to this LibTorch build (hint: --device cpu)");
  }
  if (requested == "cuda" || (requested == "auto" && has_cuda)) {
    const int count = static_cast<int>(torch::cuda::device_count());
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank % std::max(1, count)));
  }
  return torch::kCPU;
}

namespace {

// Whether the processor's flags name bf16 arithmetic. LibTorch 1.13 exposes
// no CPU feature query in its installed headers, and the flags line is all
// this needs.
bool cpu_flags_have_bf16() {
  static const bool has = [] {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("flags", 0) != 0) continue;
      std::istringstream words(line);
      for (std::string w; words >> w;) {
        if (w == "avx512_bf16" || w == "amx_bf16") return true;
      }
      return false;
    }
    return false;
  }();
  return has;
}

// Whether oneDNN, which runs LibTorch's CPU convolutions, will use bf16
// instructions: ONEDNN_MAX_CPU_ISA (or DNNL_MAX_CPU_ISA) can hold it below
// them, and then bf16 runs on its reference kernels, many times slower
// than float32. oneDNN's own answer where its C API is visible (Debian's
// LibTorch links libdnnl.so.2); LibTorch wheels link it hidden, and there
// the variables are read as oneDNN reads them.
bool onednn_allows_bf16() {
  using EffectiveIsa = int (*)();
  if (auto* isa = reinterpret_cast<EffectiveIsa>(::dlsym(RTLD_DEFAULT, "dnnl_get_effective_cpu_isa"))) {
    constexpr int kBf16Bit = 0x80;  // set in avx512_core_bf16, _amx and _fp16, in oneDNN 2.x and 3.x
    return (isa() & kBf16Bit) != 0;
  }
  for (const char* name : {"ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"}) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') continue;
    std::string cap = value;
    for (char& c : cap) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return cap == "ALL" || cap.find("BF16") != std::string::npos || cap.find("AMX") != std::string::npos ||
           cap.find("FP16") != std::string::npos || cap.rfind("AVX10", 0) == 0;
  }
  return true;
}

}  // namespace

bool cpu_has_native_bf16() {
  static const bool has = cpu_flags_have_bf16() && onednn_allows_bf16();
  return has;
}

bool use_bf16_autocast(const std::string& mixed_precision, const torch::Device& device) {
  if (mixed_precision == "off") return false;
  if (device.is_cuda()) return true;
  return mixed_precision == "on" && cpu_has_native_bf16();
}

void configure_determinism(bool deterministic) {
  // cuBLAS repeats its results only with a fixed workspace, and LibTorch in
  // deterministic mode refuses CUDA matmuls without one. cuBLAS reads the
  // variable when its first handle is made: this runs before any model
  // work. A value the user set is kept.
  if (deterministic) ::setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
  at::globalContext().setDeterministicAlgorithms(deterministic, /*warn_only=*/false);
  at::globalContext().setBenchmarkCuDNN(!deterministic);
  at::globalContext().setDeterministicCuDNN(deterministic);
}

torch::Tensor to_device_async(const torch::Tensor& t, const torch::Device& device) {
  if (!device.is_cuda() || !t.is_cpu()) return t.to(device);
  return t.pin_memory().to(device, /*non_blocking=*/true);
}

void install_terminate_handler() {
  std::set_terminate([] {
    std::cout.flush();
    std::fflush(stdout);
    std::string why = "no exception";
    if (const auto current = std::current_exception()) {
      try {
        std::rethrow_exception(current);
      } catch (const c10::Error& e) {
        why = e.what_without_backtrace();
      } catch (const std::exception& e) {
        why = e.what();
      } catch (...) {
        why = "an exception of unknown type";
      }
    }
    std::cerr << "error: internal failure, aborting: " << printable(first_line(why)) << std::endl;
    std::abort();
  });
}

}  // namespace cifar
