// Golden values: a tiny fixed-seed run of the real Trainer on real data,
// whose per-epoch metrics must match the baseline kept in the repository
// (tests/golden/cnn_two_epochs.json). A change that alters the numbers of
// training (loss, augmentation, data order, initialisation, optimiser)
// fails here and has to be acknowledged by regenerating the file:
//   CIFAR10_UPDATE_GOLDEN=1 build/test_training --gtest_filter=Golden.*
//
// The run is in float64. In float32 the kernels each CPU gets (OpenBLAS's
// per-core GEMM, oneDNN's per-ISA convolutions, ATen's AVX2/AVX-512 paths)
// sum in other orders, and eight Adam steps amplify those last-place
// differences into 3 of 256 images changing class: a baseline recorded on
// one CPU failed on another. In float64 the same reorderings move the
// metrics by about 1e-13, far inside the tolerance, while any change to
// the arithmetic itself moves them by 1e-4 or more. CI reruns this test
// under other kernel choices (scripts/test.sh).
#include <cstdlib>

#include "common/atomic_file.h"
#include "data/dataset.h"
#include "distributed/context.h"
#include "models/registry.h"
#include "test_util.h"
#include "training/callbacks/history.h"
#include "training/trainer.h"

namespace cifar {
namespace {

TEST(Golden, CnnTwoEpochsMatchTheBaseline) {
  Config config;
  config.model.model_type = "cnn";
  config.data.train_limit = 256;
  config.data.validation_size = 128;
  config.train.batch_size = 64;
  config.train.epochs = 2;
  config.run.seed = 3;
  at::set_num_threads(1);  // reductions split by thread count; pin it

  const auto data = read_cifar10(testing::batches_dir());
  const Splits splits = make_splits(data, config.data, 3);
  const Normalization norm = make_normalization("standard");
  const ModelSpec spec = make_spec(config.model, data.class_names, norm.mean, norm.std);
  torch::manual_seed(3);
  // Initialised in float64 as well: float32 draws differ in the last place
  // between CPUs' vector kernels.
  const auto default_dtype = torch::get_default_dtype();
  torch::set_default_dtype(caffe2::TypeMeta::Make<double>());
  auto model = build_model(spec);
  torch::set_default_dtype(default_dtype);
  auto dist = make_single_process_context();
  Trainer trainer(config, splits, model, spec, torch::kCPU, *dist);
  auto history = std::make_shared<History>();
  trainer.add_callback(history);
  trainer.fit();

  const auto golden = std::filesystem::path(CIFAR10_SOURCE_DIR) / "tests/golden/cnn_two_epochs.json";
  if (std::getenv("CIFAR10_UPDATE_GOLDEN")) {
    write_file_atomic(golden, history->to_json().dump(2) + "\n");
    GTEST_SKIP() << "baseline rewritten: " << golden;
  }
  const auto expected = nlohmann::json::parse(read_file(golden));
  const auto actual = history->to_json();
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t e = 0; e < expected.size(); ++e) {
    for (const auto& [key, value] : expected[e].items()) {
      ASSERT_TRUE(actual[e].contains(key)) << key;
      // Bit-exact on the machine that wrote it; the tolerance only allows
      // for another CPU's kernels summing in another order (float64: about
      // 1e-13 measured across OpenBLAS and oneDNN kernel choices).
      EXPECT_NEAR(actual[e][key].get<double>(), value.get<double>(), 1e-9 * std::max(1.0, std::abs(value.get<double>())))
          << "epoch " << e + 1 << " " << key;
    }
  }
}

}  // namespace
}  // namespace cifar
