#include "common/runtime.h"

#include <sched.h>

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

bool cpu_has_native_bf16() {
  // LibTorch 1.13 exposes no CPU feature query in its installed headers, and
  // the flags line is all we need.
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
