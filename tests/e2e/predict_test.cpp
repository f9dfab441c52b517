// `cifar10 predict` as a user runs it: real binary, real image files.
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "data/cifar_reader.h"
#include "data/dataset.h"
#include "evaluation/image_io.h"
#include "models/registry.h"
#include "test_util.h"
#include "training/checkpoint.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;

TEST(PredictCommand, ClassifiesFilesAndReportsEachBadOne) {
  testing::TempDir tmp("predict");
  const auto test = read_cifar_batch(testing::batches_dir() / "test_batch.bin");
  const auto names = read_class_names(testing::batches_dir() / "batches.meta.txt");
  const Normalization norm = make_normalization("standard");
  ModelConfig mc;
  mc.model_type = "cnn";
  const ModelSpec spec = make_spec(mc, names, norm.mean, norm.std);
  torch::manual_seed(0);
  auto model = build_model(spec);
  save_checkpoint((tmp / "model.pt").string(), *model, spec, nullptr, nlohmann::json::object());
  fs::create_directories(tmp / "imgs");
  for (int i = 0; i < 3; ++i) write_png(tmp / "imgs" / ("img" + std::to_string(i) + ".png"), test.images[i]);
  testing::write_bytes(tmp / "notes.png", "not an image at all");

  auto r = testing::run_cifar10({"predict", "--load-model", (tmp / "model.pt").string(), (tmp / "imgs").string(),
                                 (tmp / "notes.png").string(), (tmp / "missing.jpg").string(), "--output",
                                 (tmp / "out.json").string(), "--top-k", "2"});
  EXPECT_EQ(r.exit_code, 2) << r.output;  // some files were bad input
  for (int i = 0; i < 3; ++i) EXPECT_NE(r.output.find("img" + std::to_string(i) + ".png: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("notes.png"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("missing.jpg"), std::string::npos) << r.output;
  auto out = nlohmann::json::parse(read_file(tmp / "out.json"));
  int predicted = 0;
  for (const auto& row : out) predicted += row.contains("predictions") ? 1 : 0;
  EXPECT_EQ(predicted, 3);

  auto ok = testing::run_cifar10({"predict", "--load-model", (tmp / "model.pt").string(), (tmp / "imgs").string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;

  auto bad_model = testing::run_cifar10({"predict", "--load-model", (tmp / "notes.png").string(), (tmp / "imgs").string()});
  EXPECT_EQ(bad_model.exit_code, 2) << bad_model.output;
}

}  // namespace
}  // namespace cifar
