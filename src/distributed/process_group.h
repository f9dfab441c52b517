// The one process-group factory: Gloo or NCCL over c10d, behind the
// DistributedContext interface, or the single-process context that needs no
// rendezvous. LibTorch's C++ API has no DistributedDataParallel, so the
// context built here does its work itself: rank 0's weights broadcast at
// start, gradients all-reduced in ~25 MB buckets launched from gradient
// hooks as the backward pass fills them.
#pragma once
#include <torch/torch.h>

#include <cstddef>
#include <memory>
#include <string>

#include "config/config.h"
#include "distributed/context.h"
#include "distributed/environment.h"

namespace cifar {

// 25 MB, PyTorch DDP's default: large enough that per-call latency (about
// 100 us for Gloo on loopback, more across machines) is amortised, small
// enough that the first buckets finish while the backward pass is still
// computing the rest.
constexpr size_t kGradientBucketBytes = 25u << 20;

// Whether this build has the c10d process group `backend` ("gloo" or
// "nccl"): the CUDA LibTorch wheels ship without Gloo's headers, Debian's
// CPU LibTorch without NCCL.
bool has_backend(const std::string& backend);

// The backend a rank on `device` uses for --dist-backend `requested`
// ("auto": NCCL on CUDA where the build has it, else Gloo). Throws
// UserError for one this build lacks or that cannot drive `device`.
std::string checked_backend(const std::string& requested, const torch::Device& device);

// World size 1 with backend "auto": the single-process context, no
// rendezvous. Otherwise a c10d group: rank 0 hosts a TCPStore at
// env.master_addr:master_port and every rank joins it within
// config.timeout seconds; every collective then waits at most that long
// for its peers before failing with a one-line UserError on each surviving
// rank (an explicit --dist-backend at world size 1 builds a real group of
// one, to measure what the data-parallel path costs). Backend "auto" is
// NCCL when `device` is CUDA and LibTorch has it, else Gloo. `bucket_bytes`
// is for tests.
std::unique_ptr<DistributedContext> make_distributed_context(const DistConfig& config, const DistEnvironment& env,
                                                             const torch::Device& device,
                                                             size_t bucket_bytes = kGradientBucketBytes);

}  // namespace cifar
