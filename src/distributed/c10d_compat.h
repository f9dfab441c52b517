// c10d differences between Debian's LibTorch 1.13 (CPU, Gloo) and the CUDA
// LibTorch 2.x wheels (NCCL, Gloo headers not always shipped). Only the
// process-group files (process_group.cpp, rendezvous.cpp, c10d_context.cpp)
// include this, so c10d's heavy headers stay out of every other
// translation unit.
#pragma once
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <type_traits>
#include <utility>

#include "common/torch_compat.h"

// Gloo: USE_C10D_GLOO comes from the torch_cpu target when LibTorch was
// built with it; the gloo headers themselves may be missing from a wheel.
#if defined(USE_C10D_GLOO) && defined(CIFAR10_HAVE_GLOO) && \
    __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>)
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#define CIFAR10_C10D_GLOO 1
#else
#define CIFAR10_C10D_GLOO 0
#endif

// NCCL: USE_C10D_NCCL comes from the torch_cuda target of a CUDA build, for
// every file that links it, but only the process-group files have nccl.h
// on their include path (CMakeLists.txt), so only a file that also has
// CIFAR10_WITH_NCCL asks for it; elsewhere (the trait's test) this header
// stays NCCL-free. ProcessGroupNCCL.hpp exists in CPU builds too (Debian
// ships it) but declares nothing without USE_C10D_NCCL.
#if defined(CIFAR10_WITH_NCCL) && defined(USE_C10D_NCCL) && \
    __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>)
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define CIFAR10_C10D_NCCL 1
#else
#define CIFAR10_C10D_NCCL 0
#endif

namespace cifar::compat {

// The class that implements collectives: 2.0 split c10d::ProcessGroup into a
// dispatching front and c10d::Backend (ProcessGroupGloo/NCCL derive from it);
// in 1.13 they derive from ProcessGroup. Both declare the same virtual
// allreduce / broadcast / barrier returning c10::intrusive_ptr<c10d::Work>.
#if CIFAR_TORCH_AT_LEAST(2, 0)
using CollectiveBackend = c10d::Backend;
#else
using CollectiveBackend = c10d::ProcessGroup;
#endif

// TCPStoreOptions gained fields in 2.x (useLibUV, masterListenFd, ...);
// assigning by name keeps this the same on both.
inline c10d::TCPStoreOptions tcp_store_options(bool is_server, int world_size, std::chrono::milliseconds timeout,
                                               uint16_t port) {
  c10d::TCPStoreOptions o;
  o.port = port;
  o.isServer = is_server;
  o.numWorkers = static_cast<size_t>(world_size);
  // Not waiting here: the group's own rendezvous waits for every rank (up
  // to the timeout) anyway, and 1.13's server, after waiting out the
  // timeout for a missing rank, went on silently into a second full wait.
  o.waitWorkers = false;
  o.timeout = timeout;
  return o;
}

namespace detail {
template <class T, class = void>
struct HasShutdown : std::false_type {};
// Access is part of the check: a private shutdown() counts as none.
template <class T>
struct HasShutdown<T, std::void_t<decltype(std::declval<T&>().shutdown())>> : std::true_type {};

// A template, so that the call is not compiled where it does not exist.
template <class Group>
void shutdown_if(CollectiveBackend& pg) {
  if constexpr (HasShutdown<Group>::value) {
    if (auto* group = dynamic_cast<Group*>(&pg)) group->shutdown();
  }
}
}  // namespace detail

// A group that ended normally, shut down before it is destroyed: 2.x's
// ProcessGroupNCCL otherwise warns at exit that destroy_process_group() was
// not called and aborts its communicators. Its shutdown() became public
// during 2.x, with and without arguments, so whether to call it is asked of
// the class itself rather than of a version number. Gloo needs nothing.
inline void shutdown_backend(CollectiveBackend& pg) {
#if CIFAR10_C10D_NCCL
  detail::shutdown_if<c10d::ProcessGroupNCCL>(pg);
#else
  (void)pg;
#endif
}

}  // namespace cifar::compat
