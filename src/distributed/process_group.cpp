#include "distributed/process_group.h"

#include <csignal>

#include "common/error.h"
#include "distributed/c10d_compat.h"
#include "distributed/c10d_context.h"
#include "distributed/rendezvous.h"

namespace cifar {

bool has_backend(const std::string& backend) {
  if (backend == "gloo") return CIFAR10_C10D_GLOO;
  if (backend == "nccl") return CIFAR10_C10D_NCCL;
  return false;
}

std::string checked_backend(const std::string& requested, const torch::Device& device) {
  // Gloo also reduces CUDA tensors (slower, through host memory), so a CUDA
  // build without NCCL still trains on several GPUs.
  const std::string backend = requested != "auto"                      ? requested
                              : device.is_cuda() && has_backend("nccl") ? "nccl"
                                                                        : "gloo";
  if (backend == "nccl" && !device.is_cuda()) {
    throw UserError("--dist-backend nccl needs CUDA devices, but this rank runs on " + device.str() +
                    " (hint: --dist-backend gloo for CPU training)");
  }
  if (backend == "nccl" && !has_backend("nccl")) {
    throw UserError("this LibTorch build has no NCCL process group (hint: --dist-backend gloo)");
  }
  if (backend == "gloo" && !has_backend("gloo")) {
    throw UserError("this build of cifar10 has no Gloo process group (LibTorch " + compat::torch_version() +
                    " without the gloo headers; hint: --dist-backend nccl on CUDA)");
  }
  return backend;
}

std::unique_ptr<DistributedContext> make_distributed_context(const DistConfig& config, const DistEnvironment& env,
                                                             const torch::Device& device, size_t bucket_bytes,
                                                             HostWaits waits) {
  if (env.world_size == 1 && config.backend == "auto") return make_single_process_context();
  // A peer that is gone leaves its sockets closed, and a write to one
  // raises SIGPIPE unless the writer asked otherwise: a stalled rank, once
  // continued, died of it without a word. Ignored, the write fails, the
  // collective throws, and the rank reports it in one line like any other
  // lost peer (DataParallel.AStalledRankIsGivenUpAndLeavesWithOneLineWhenContinued).
  std::signal(SIGPIPE, SIG_IGN);
  C10dSettings s;
  s.backend = checked_backend(config.backend, device);
  s.timeout = std::chrono::seconds(config.timeout);
  s.waits = waits != HostWaits::kAuto ? waits : s.backend == "nccl" ? HostWaits::kStreamOrdered : HostWaits::kBlocking;
  // Polled waits enforce --dist-timeout; the backend's own (NCCL's
  // watchdog) is the backstop, so it must not fire first.
  s.backend_timeout = s.waits == HostWaits::kStreamOrdered ? s.timeout + std::chrono::seconds(kBackstopSeconds)
                                                           : s.timeout;
  s.sync_bn = config.sync_bn;
  s.bucket_bytes = bucket_bytes;
  return make_c10d_context(form_group(config, env, device, s.backend, s.backend_timeout), env, s, device);
}

}  // namespace cifar
