// The one process-group factory: Gloo or NCCL over c10d (rendezvous.h
// forms the group, c10d_context.h drives it), behind the
// DistributedContext interface, or the single-process context that needs
// no rendezvous. LibTorch's C++ API has no DistributedDataParallel, so the
// context does that work itself.
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

// How a rank waits for its collectives.
// kBlocking: the host waits for each one, up to --dist-timeout (Gloo's
//   collectives run on host threads, so there is nothing to overlap).
// kStreamOrdered (NCCL's): a step's gradient and buffer collectives only
//   put the device's stream behind them, and the host checks that they
//   finished one step later, or before it next reads device memory (a
//   collective whose result it reads, wait_for_collectives(),
//   sync_buffers()): polled against --dist-timeout. A hung peer is thus
//   still this rank's one-line error, without the host waiting on the GPU
//   every step. NCCL's own watchdog, given
//   --dist-timeout plus kBackstopSeconds, ends the process should the host
//   be stuck where it cannot check (a device copy behind the hung kernel).
// kAuto picks by backend; the others are for tests.
enum class HostWaits { kAuto, kBlocking, kStreamOrdered };
constexpr int kBackstopSeconds = 30;

// World size 1 with backend "auto": the single-process context, no
// rendezvous. Otherwise a c10d group: rank 0 hosts a TCPStore at
// env.master_addr:master_port and every rank joins it within
// config.timeout seconds; every collective then waits at most that long
// for its peers before failing with a one-line UserError on each surviving
// rank (an explicit --dist-backend at world size 1 builds a real group of
// one, to measure what the data-parallel path costs). Backend "auto" is
// NCCL when `device` is CUDA and LibTorch has it, else Gloo. `bucket_bytes`
// and `waits` are for tests.
std::unique_ptr<DistributedContext> make_distributed_context(const DistConfig& config, const DistEnvironment& env,
                                                             const torch::Device& device,
                                                             size_t bucket_bytes = kGradientBucketBytes,
                                                             HostWaits waits = HostWaits::kAuto);

}  // namespace cifar
