// Host-to-device copies that do not make the host wait (CUDA only; on a CPU
// the helper is a plain to()); the terminate handler.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/runtime.h"
#include "test_util.h"

#include <csignal>
#include <iostream>
#include <thread>

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

// An exception escaping a thread ends the process through std::terminate:
// what the process printed to a piped stdout (buffered) comes out, then
// one error line, and the process aborts as before.
TEST(TerminateHandler, FlushesStdoutAndNamesTheException) {
  const auto child = testing::run_forked([] {
    install_terminate_handler();
    std::cout << "Epoch 1/3 done";  // no newline: still in the buffer
    std::thread([] { throw std::runtime_error("gloo enforce failed\nsecond line"); }).join();
  });
  const std::string& text = child.output;
  EXPECT_EQ(child.signal, SIGABRT) << child.exit_code;
  EXPECT_NE(text.find("Epoch 1/3 done"), std::string::npos) << text;
  EXPECT_NE(text.find("error: internal failure, aborting: gloo enforce failed\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("second line"), std::string::npos) << text;
}

}  // namespace
}  // namespace cifar
