// Process-wide settings taken once at start: intra-op threads, device,
// determinism, seeding.
#pragma once
#include <torch/torch.h>

#include <string>

namespace cifar {

// Cores this process may run on (sched_getaffinity), at least 1. Debian's
// LibTorch starts with one intra-op thread, so we set it from this.
int usable_cores();

// Sets intra-op threads (`threads` or, when 0, `cores_share` of the usable
// cores) and returns the count set.
int configure_threads(int threads, int cores_share_divisor = 1);

// "auto" -> CUDA when present. Throws UserError for "cuda" without a GPU.
torch::Device resolve_device(const std::string& requested, int local_rank = 0);

// Whether CPU convolutions can run in bf16 at speed: the processor has bf16
// arithmetic (AVX512-BF16 or AMX-BF16, from /proc/cpuinfo) and oneDNN may
// use it (ONEDNN_MAX_CPU_ISA=AVX2 forbids it). Otherwise oneDNN emulates
// bf16, slower than float32.
bool cpu_has_native_bf16();

// Whether training and evaluation run under bf16 autocast for
// --mixed-precision (auto | on | off) on `device`: on CUDA unless "off"; on
// a CPU only when "on" and the CPU has bf16 arithmetic (+50% over float32
// for the quick preset on the 2-core Xeon of docs/BENCHMARKS.md).
bool use_bf16_autocast(const std::string& mixed_precision, const torch::Device& device);

// `t`, a host tensor, on `device` without making the host wait for it. On
// CUDA a copy from pageable memory synchronises the stream, so each small
// per-step copy (batch indices, augmentation draws, normalisation
// constants) would leave the GPU idle until the host queued more work; a
// copy from pinned memory is asynchronous, and the caching host allocator
// keeps the pinned block until the copy has run. Elsewhere a plain to().
torch::Tensor to_device_async(const torch::Tensor& t, const torch::Device& device);

// Deterministic kernels and no cuDNN autotuning when asked: cuDNN's
// benchmark mode would otherwise pick algorithms per process.
void configure_determinism(bool deterministic);

// An exception escaping a LibTorch or Gloo thread (gloo::EnforceNotMet)
// ends the process through std::terminate, and a rank's buffered stdout
// (a pipe under a launcher) was lost with it. The handler installed here
// flushes it and says why in one "error:" line before aborting.
void install_terminate_handler();

}  // namespace cifar
