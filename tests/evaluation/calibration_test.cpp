// Temperature scaling: the fitted temperature is the one the labels were
// drawn with, and it changes confidences, never predictions.
#include <gtest/gtest.h>

#include "evaluation/calibration.h"

namespace cifar {
namespace {

// Labels drawn from softmax(z / t0): the likelihood is highest at t0.
torch::Tensor labels_drawn_at(const torch::Tensor& z, double t0, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::multinomial(torch::softmax(z / t0, 1), 1, true, gen).squeeze(1);
}

TEST(Calibration, RecoversTheTemperatureTheLabelsWereDrawnAt) {
  auto gen = at::detail::createCPUGenerator(1);
  const auto z = torch::randn({20000, 10}, gen, torch::kFloat64) * 3.0;
  for (double t0 : {0.5, 1.0, 2.5}) {
    const double fitted = fit_temperature(z, labels_drawn_at(z, t0, 2));
    EXPECT_NEAR(fitted, t0, 0.05 * t0) << "drawn at " << t0;
  }
}

TEST(Calibration, HandlesTtaLogProbabilitiesOfZero) {
  // Averaged TTA probabilities can round to 0: log gives -inf.
  auto z = torch::tensor({{0.0, -std::numeric_limits<double>::infinity()}, {-0.1, -2.3}}, torch::kFloat64);
  const double t = fit_temperature(z, torch::tensor({1, 0}, torch::kInt64));
  EXPECT_TRUE(std::isfinite(t));
  EXPECT_GE(t, kMinTemperature);
  EXPECT_LE(t, kMaxTemperature);
  EXPECT_EQ(fit_temperature(torch::zeros({0, 10}), torch::zeros({0}, torch::kInt64)), 1.0);
}

TEST(Calibration, TemperatureKeepsEveryPrediction) {
  auto gen = at::detail::createCPUGenerator(3);
  const auto z = torch::randn({1000, 10}, gen, torch::kFloat64);
  for (double t : {0.3, 4.0}) EXPECT_TRUE(torch::equal((z / t).argmax(1), z.argmax(1)));
}

}  // namespace
}  // namespace cifar
