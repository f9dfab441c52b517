// `cifar10 predict` as a user runs it: real binary, real image files.
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "data/cifar_reader.h"
#include "data/dataset.h"
#include "evaluation/evaluate.h"
#include "data/image_io.h"
#include "models/registry.h"
#include "test_util.h"
#include "checkpoint/checkpoint.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;

// The cnn on CIFAR-10's class names and standard normalisation.
ModelSpec cnn_spec() {
  const Normalization norm = make_normalization("standard");
  ModelConfig mc;
  mc.model_type = "cnn";
  return make_spec(mc, read_class_names(testing::batches_dir() / "batches.meta.txt"), norm.mean, norm.std);
}

TEST(PredictCommand, ClassifiesFilesAndReportsEachBadOne) {
  testing::TempDir tmp("predict");
  const auto test = read_cifar_batch(testing::batches_dir() / "test_batch.bin");
  const ModelSpec spec = cnn_spec();
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

// A run evaluated with TTA (the quick preset's) is predicted with TTA too,
// so predict's classes are the evaluation's for the same images; --no-tta
// and --tta choose.
TEST(PredictCommand, AveragesAsTheCheckpointsRunEvaluatedUnlessTold) {
  testing::TempDir tmp("predict_tta");
  const auto test = read_cifar_batch(testing::batches_dir() / "test_batch.bin").slice(0, 4);
  const ModelSpec spec = cnn_spec();
  const auto& names = spec.class_names;
  const Normalization norm{spec.mean, spec.std};
  torch::manual_seed(1);
  auto model = build_model(spec);
  save_checkpoint((tmp / "tta.pt").string(), *model, spec, nullptr, {{"config", {{"tta", true}}}});
  save_checkpoint((tmp / "plain.pt").string(), *model, spec, nullptr, {{"config", {{"tta", false}}}});
  fs::create_directories(tmp / "imgs");
  for (int i = 0; i < 4; ++i) write_png(tmp / "imgs" / ("img" + std::to_string(i) + ".png"), test.images[i]);
  // What the evaluation computes for these images, each way.
  auto expected = [&](bool tta) {
    EvalOptions options;
    options.tta = tta;
    return torch::softmax(predict_logits(*model, test.images, norm, options), 1).max(1);
  };
  auto top1 = [&](const std::string& checkpoint, std::vector<std::string> flags) {
    std::vector<std::string> args{"predict", "--load-model", (tmp / checkpoint).string(), "--top-k", "1",
                                  "--output", (tmp / "out.json").string(), (tmp / "imgs").string()};
    args.insert(args.end(), flags.begin(), flags.end());
    auto r = testing::run_cifar10(args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::vector<std::pair<std::string, double>> out;
    for (const auto& row : nlohmann::json::parse(read_file(tmp / "out.json"))) {
      out.emplace_back(row["predictions"][0]["class"], row["predictions"][0]["confidence"]);
    }
    return out;
  };
  auto expect_like = [&](const std::vector<std::pair<std::string, double>>& got, bool tta) {
    const auto [prob, cls] = expected(tta);
    ASSERT_EQ(got.size(), 4u);
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(got[i].first, names[cls[i].item<int64_t>()]) << i << (tta ? " tta" : " plain");
      EXPECT_NEAR(got[i].second, prob[i].item<double>(), 1e-5) << i << (tta ? " tta" : " plain");
    }
  };
  const auto with_tta = top1("tta.pt", {});
  expect_like(with_tta, true);
  expect_like(top1("plain.pt", {}), false);
  expect_like(top1("tta.pt", {"--no-tta"}), false);
  expect_like(top1("plain.pt", {"--tta"}), true);
  EXPECT_NE(with_tta, top1("tta.pt", {"--no-tta"})) << "the two ways gave the same figures";
}

}  // namespace
}  // namespace cifar
