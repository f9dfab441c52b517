// The DistributedContext of a formed c10d group (Gloo or NCCL): rank 0's
// weights broadcast at start, gradients all-reduced in buckets launched
// from gradient hooks as the backward pass fills them, buffers agreed where
// they are read or saved, and every collective held to --dist-timeout.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include "distributed/c10d_compat.h"
#include "distributed/context.h"
#include "distributed/environment.h"
#include "distributed/process_group.h"

namespace cifar {

struct C10dGroup {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<compat::CollectiveBackend> pg;
};

struct C10dSettings {
  std::string backend;                       // "gloo" or "nccl"
  std::chrono::milliseconds timeout;         // --dist-timeout: ours to enforce
  std::chrono::milliseconds backend_timeout; // the backend's own; longer when ours is enforced by polling
  HostWaits waits = HostWaits::kBlocking;    // kAuto resolved
  bool sync_bn = false;
  size_t bucket_bytes = kGradientBucketBytes;
};

std::unique_ptr<DistributedContext> make_c10d_context(C10dGroup group, const DistEnvironment& env,
                                                      const C10dSettings& settings, const torch::Device& device);

}  // namespace cifar
