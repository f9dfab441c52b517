// Forming a c10d group: the store (a TCPStore at MASTER_ADDR:MASTER_PORT,
// or the local launcher's FileStore), a check that every rank agrees on
// the group's shape, and the Gloo or NCCL backend over it; each failure
// named in one line within --dist-timeout, on every rank.
#pragma once
#include <chrono>
#include <string>

#include "config/config.h"
#include "distributed/c10d_context.h"
#include "distributed/environment.h"

namespace cifar {

// `backend` is checked_backend()'s; `backend_timeout` the backend's own
// collective timeout.
C10dGroup form_group(const DistConfig& config, const DistEnvironment& env, const torch::Device& device,
                     const std::string& backend, std::chrono::milliseconds backend_timeout);

}  // namespace cifar
