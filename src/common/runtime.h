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

// Deterministic kernels and no cuDNN autotuning when asked (REFERENCE #9).
void configure_determinism(bool deterministic);

}  // namespace cifar
