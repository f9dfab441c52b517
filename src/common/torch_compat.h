// The one place that knows which LibTorch we build against: Debian's 1.13
// (CPU) here, CUDA LibTorch 2.x on GPU machines. Everything else calls these.
#pragma once
#include <torch/torch.h>
#include <torch/version.h>
#include <ATen/autocast_mode.h>

#include <sstream>
#include <string>
#include <type_traits>

#define CIFAR_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||        \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace cifar {

// The first line of an exception's message, a c10::Error's without the C++
// backtrace LibTorch appends.
inline std::string first_line(const std::exception& e) {
  std::string what = e.what();
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) what = c10->what_without_backtrace();
  if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
  return what;
}

}  // namespace cifar

namespace cifar::compat {

// bf16 autocast on `device` (CUDA or CPU) for the scope of the guard. The
// C++ autocast API changed in 2.4 from per-device setters (set_enabled for
// CUDA, set_cpu_enabled) to ones taking the device type.
class AutocastGuard {
 public:
  AutocastGuard(bool enabled, c10::DeviceType device) : enabled_(enabled), cpu_(device == c10::DeviceType::CPU) {
    if (!enabled_) return;
#if CIFAR_TORCH_AT_LEAST(2, 4)
    const auto type = cpu_ ? at::kCPU : at::kCUDA;
    prev_ = at::autocast::is_autocast_enabled(type);
    at::autocast::set_autocast_dtype(type, at::kBFloat16);
    at::autocast::set_autocast_enabled(type, true);
#else
    if (cpu_) {
      prev_ = at::autocast::is_cpu_enabled();
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      at::autocast::set_cpu_enabled(true);
    } else {
      prev_ = at::autocast::is_enabled();
      at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
      at::autocast::set_enabled(true);
    }
#endif
  }
  ~AutocastGuard() {
    if (!enabled_) return;
#if CIFAR_TORCH_AT_LEAST(2, 4)
    at::autocast::set_autocast_enabled(cpu_ ? at::kCPU : at::kCUDA, prev_);
#else
    if (cpu_) {
      at::autocast::set_cpu_enabled(prev_);
    } else {
      at::autocast::set_enabled(prev_);
    }
#endif
    at::autocast::clear_cache();
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool enabled_;
  bool cpu_;
  bool prev_ = false;
};

// torch::optim keys each parameter's state by its TensorImpl's address: as
// text in 1.x (c10::guts::to_string, which is operator<< of the pointer), as
// the pointer itself in 2.x. Asked of the map's key type, not of a version.
using OptimizerStateKey = std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>::key_type;

// A template only so that the branch for the other version is not compiled.
template <class Key = OptimizerStateKey>
Key optimizer_state_key(const at::Tensor& param) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream os;
    os << param.unsafeGetTensorImpl();
    return os.str();
  } else {
    return param.unsafeGetTensorImpl();
  }
}

inline std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

}  // namespace cifar::compat
