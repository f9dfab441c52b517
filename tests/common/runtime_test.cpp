// Host-to-device copies that do not make the host wait (CUDA only; on a CPU
// the helper is a plain to()).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/runtime.h"

namespace cifar {
namespace {

TEST(ToDeviceAsync, ValuesArriveAndLaterHostWritesDoNot) {
  const torch::Device device = torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  auto host = torch::arange(1000, torch::kInt64);
  auto on_device = to_device_async(host, device);
  // The copy must have been taken from a snapshot of the host tensor: a
  // write straight after the call must not reach the device copy.
  if (device.is_cuda()) host.fill_(-1);
  EXPECT_EQ(on_device.device(), device);
  EXPECT_TRUE(torch::equal(on_device.cpu(), torch::arange(1000, torch::kInt64)));
  // Already there: the same tensor back.
  EXPECT_TRUE(to_device_async(on_device, device).is_same(on_device));
}

}  // namespace
}  // namespace cifar
