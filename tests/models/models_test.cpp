// Behaviour every model in the zoo shares (shapes, gradients, train/eval,
// channels_last, checkpoints, summaries, freezing), plus each family's
// exact parameter counts against the reference implementations.
#include <regex>
#include <sstream>

#include "common/error.h"
#include "data/cifar_reader.h"
#include "models/efficientnet.h"
#include "models/fastnet.h"
#include "models/registry.h"
#include "models/summary.h"
#include "test_util.h"
#include "checkpoint/checkpoint.h"

namespace cifar {
namespace {

ModelSpec spec_of(const std::string& type, int depth = 18, int input_size = 32, int classes = 10) {
  ModelSpec s;
  s.type = type;
  s.depth = depth;
  s.input_size = input_size;
  for (int i = 0; i < classes; ++i) s.class_names.push_back("class" + std::to_string(i));
  return s;
}

std::string label_of(const ModelSpec& s) {
  std::string out = s.type;
  if (s.type == "resnet") out += std::to_string(s.depth);
  if (s.input_size != 32) out += "_at" + std::to_string(s.input_size);
  return out;
}

// Fresh weights vary from run to run, so every test seeds first.
NetPtr build(const ModelSpec& spec) {
  torch::manual_seed(0);
  auto model = build_model(spec);
  // Whitening from random data: the fast net is degenerate (all-zero
  // features) until init_whitening has run.
  if (spec.type == "fast") init_whitening(*model, torch::randn({64, 3, 32, 32}));
  return model;
}

torch::Tensor images(int64_t batch) { return torch::randn({batch, 3, 32, 32}); }

// Sets every batch norm's running statistics from one batch (momentum
// "none" is a cumulative average, so one pass replaces the initial 0/1), then
// switches to eval. Untouched initial statistics make eval logits vanish
// (EfficientNet: ~1e-13) or explode (ResNet-110: ~1e8), which would let a
// tolerance pass vacuously or fail on rounding alone.
void calibrate_norms(Net& model) {
  std::vector<std::pair<torch::nn::BatchNormOptions*, c10::optional<double>>> saved;
  for (auto& m : model.modules()) {
    torch::nn::BatchNormOptions* o = nullptr;
    if (auto* bn = m->as<torch::nn::BatchNorm2d>()) o = &bn->options;
    if (auto* bn = m->as<torch::nn::BatchNorm1d>()) o = &bn->options;
    if (!o) continue;
    saved.emplace_back(o, o->momentum());
    o->momentum(c10::nullopt);
  }
  torch::NoGradGuard no_grad;
  model.train();
  model.forward(images(8));
  for (auto& [o, momentum] : saved) o->momentum(momentum);
  model.eval();
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

// ---------------------------------------------------------------------------
// Parameter counts. ResNet-18/34/50 are the CIFAR variants of kuangliu's
// pytorch-cifar; 20/32/56/110 akamaster's pytorch_resnet_cifar10 (He et
// al.'s 0.27M/0.46M/0.85M/1.7M). By hand, with n blocks per stage:
// 464 (stem) + 4,672n + 13,952 + 18,560(n-1) + 55,552 + 73,984(n-1) + 650
// (fc), so n = 18 gives 1,727,962. EfficientNet-B0 is torchvision's
// 5,288,548 less the 1000-class head (1,281,000) plus a 10-class one (12,810).

struct CountCase {
  ModelSpec spec;
  int64_t total;
  int64_t trainable;
};

TEST(ModelZoo, ParameterCountsMatchTheReferenceArchitectures) {
  const std::vector<CountCase> cases = {
      {spec_of("resnet", 18), 11'173'962, 11'173'962}, {spec_of("resnet", 34), 21'282'122, 21'282'122},
      {spec_of("resnet", 50), 23'520'842, 23'520'842}, {spec_of("resnet", 20), 269'722, 269'722},
      {spec_of("resnet", 32), 464'154, 464'154},       {spec_of("resnet", 56), 853'018, 853'018},
      {spec_of("resnet", 110), 1'727'962, 1'727'962},  {spec_of("efficientnet"), 4'020'358, 4'020'358},
      // Counted by hand in cnn.h's layout: convs 286,560, their BNs 896,
      // dense 1,048,576 + BN 1,024, classifier 5,130.
      {spec_of("cnn"), 1'342'186, 1'342'186},
      // airbench94: 1,440 frozen = whitening filters 288 + BN scales 1,152.
      {spec_of("fast"), 1'972'792, 1'971'352},
  };
  torch::NoGradGuard no_grad;
  for (const auto& c : cases) {
    auto model = build_model(c.spec);
    EXPECT_EQ(count_parameters(*model), c.total) << label_of(c.spec);
    EXPECT_EQ(count_parameters(*model, /*trainable_only=*/true), c.trainable) << label_of(c.spec);
    // Every depth also runs: two images in, two rows of 10 logits out.
    model->eval();
    EXPECT_EQ(model->forward(images(2)).sizes(), (std::vector<int64_t>{2, 10})) << label_of(c.spec);
  }
}

TEST(ModelZoo, FastNetWidthScalesItsThreeBlocks) {
  auto spec = spec_of("fast");
  spec.width = 32;  // widths 32, 128, 128
  auto model = build_model(spec);
  const int64_t trainable = 24 + 24 * 32 * 9 + 32 * 32 * 9 + 2 * 32 + 32 * 128 * 9 + 128 * 128 * 9 + 2 * 128 +
                            2 * 128 * 128 * 9 + 2 * 128 + 128 * 10;
  const int64_t frozen = 24 * 3 * 2 * 2 + 2 * 32 + 4 * 128;
  EXPECT_EQ(count_parameters(*model, true), trainable);
  EXPECT_EQ(count_parameters(*model), trainable + frozen);
}

TEST(ModelZoo, UnsupportedResNetDepthNamesTheSupportedOnes) {
  try {
    build_model(spec_of("resnet", 19));
    FAIL() << "depth 19 was accepted";
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.exit_code(), kExitBadInput);
    EXPECT_NE(msg.find("19"), std::string::npos) << msg;
    for (const char* d : {"18", "34", "50", "20", "32", "56", "110"}) EXPECT_NE(msg.find(d), std::string::npos) << msg;
  }
  ModelConfig config;
  config.model_type = "resnet44";
  EXPECT_THROW(make_spec(config, {"a", "b"}, {0, 0, 0}, {1, 1, 1}), UserError);
  config.model_type = "resnet56";
  EXPECT_EQ(make_spec(config, {"a", "b"}, {0, 0, 0}, {1, 1, 1}).depth, 56);
  // Names that only start like one, a number past an int, and a depth the
  // name contradicts: refused by name, not taken for something else.
  for (const char* bad : {"resnet18x", "resnet99999999999", "resnet-18", "resnet0"}) {
    config.model_type = bad;
    EXPECT_THROW(make_spec(config, {"a", "b"}, {0, 0, 0}, {1, 1, 1}), UserError) << bad;
  }
  config.model_type = "resnet56";
  config.depth = 20;
  EXPECT_THROW(make_spec(config, {"a", "b"}, {0, 0, 0}, {1, 1, 1}), UserError);
  config.model_type = "cnn";
  EXPECT_THROW(make_spec(config, {"a", "b"}, {0, 0, 0}, {1, 1, 1}), UserError);
}

// --width and --input-size were silently ignored by the models without
// them (the summary even said "upsampled to 64"): refused, like --depth.
TEST(ModelZoo, FlagsOfAnotherArchitectureAreRefused) {
  auto error = [](const ModelConfig& config) {
    try {
      make_spec(config, {"a", "b"}, {0, 0, 0}, {1, 1, 1});
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  ModelConfig config;
  config.width = 32;
  EXPECT_EQ(error(config), "--width 32 applies to the fast net, not to --model-type resnet");
  config.model_type = "fast";
  EXPECT_EQ(error(config), "(accepted)");
  config.width = 0;
  config.input_size = 64;
  EXPECT_EQ(error(config), "--input-size 64 applies to efficientnet, not to --model-type fast (which reads CIFAR's "
                           "32x32 images as they are)");
  config.model_type = "resnet20";
  EXPECT_NE(error(config).find("not to --model-type resnet20 ("), std::string::npos);
  config.model_type = "efficientnet";
  EXPECT_EQ(error(config), "(accepted)");
}

TEST(ModelZoo, EfficientNetUsesTorchvisionStateDictNames) {
  auto model = build_model(spec_of("efficientnet"));
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& p : model->named_parameters()) shapes[p.key()] = p.value().sizes().vec();
  for (const auto& b : model->named_buffers()) shapes[b.key()] = b.value().sizes().vec();
  // torchvision's efficientnet_b0().state_dict() has 360 entries.
  EXPECT_EQ(shapes.size(), 360u);
  const std::map<std::string, std::vector<int64_t>> expected = {
      {"features.0.0.weight", {32, 3, 3, 3}},
      {"features.0.1.weight", {32}},
      {"features.0.1.running_var", {32}},
      {"features.0.1.num_batches_tracked", {}},
      {"features.1.0.block.0.0.weight", {32, 1, 3, 3}},  // stage 1 has no expansion conv
      {"features.1.0.block.1.fc1.weight", {8, 32, 1, 1}},
      {"features.1.0.block.1.fc2.bias", {32}},
      {"features.1.0.block.2.0.weight", {16, 32, 1, 1}},
      {"features.2.0.block.0.0.weight", {96, 16, 1, 1}},
      {"features.2.0.block.1.0.weight", {96, 1, 3, 3}},
      {"features.2.0.block.2.fc1.weight", {4, 96, 1, 1}},
      {"features.2.0.block.3.1.running_mean", {24}},
      {"features.3.1.block.1.0.weight", {240, 1, 5, 5}},
      {"features.6.3.block.3.0.weight", {192, 1152, 1, 1}},
      {"features.7.0.block.3.1.bias", {320}},
      {"features.8.0.weight", {1280, 320, 1, 1}},
      {"features.8.1.running_mean", {1280}},
      {"classifier.1.weight", {10, 1280}},
      {"classifier.1.bias", {10}},
  };
  for (const auto& [name, shape] : expected) {
    auto it = shapes.find(name);
    ASSERT_NE(it, shapes.end()) << name;
    EXPECT_EQ(it->second, shape) << name;
  }
}

// ---------------------------------------------------------------------------
// Shared behaviour, one instance per model family (and the upsampling path).

class EveryModel : public ::testing::TestWithParam<ModelSpec> {};

}  // namespace

// Names the model in failure messages instead of dumping the struct's bytes.
void PrintTo(const ModelSpec& spec, std::ostream* os) { *os << label_of(spec); }

namespace {

TEST_P(EveryModel, LogitsHaveOneRowPerImage) {
  auto model = build(GetParam());
  model->eval();
  torch::NoGradGuard no_grad;
  // Batch 128 only where a forward pass is cheap on two CPU cores.
  const bool small = GetParam().type == "cnn" || (GetParam().type == "resnet" && GetParam().depth == 20) ||
                     GetParam().type == "fast";
  for (int64_t batch : {1, 7, 128}) {
    if (batch == 128 && !small) continue;
    auto out = model->forward(images(batch));
    EXPECT_EQ(out.sizes(), (std::vector<int64_t>{batch, 10})) << batch;
    EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
  }
}

TEST_P(EveryModel, EveryTrainableParameterGetsAFiniteGradient) {
  auto model = build(GetParam());
  model->train();
  auto labels = torch::randint(0, 10, {3});
  auto loss = torch::nn::functional::cross_entropy(model->forward(images(3)), labels);
  loss.backward();
  double norm = 0;
  for (const auto& p : model->named_parameters()) {
    if (!p.value().requires_grad()) {
      EXPECT_FALSE(p.value().grad().defined()) << p.key() << " is frozen but got a gradient";
      continue;
    }
    const auto& g = p.value().grad();
    ASSERT_TRUE(g.defined()) << p.key() << " got no gradient";
    EXPECT_TRUE(torch::isfinite(g).all().item<bool>()) << p.key();
    norm += g.pow(2).sum().item<double>();
  }
  EXPECT_GT(norm, 0.0);
}

TEST_P(EveryModel, TrainModeIsStochasticOrBatchDependentEvalModeIsDeterministic) {
  auto model = build(GetParam());
  auto x = images(4);
  torch::NoGradGuard no_grad;
  model->train();
  auto train1 = model->forward(x);
  auto train2 = model->forward(x);
  model->eval();
  auto eval1 = model->forward(x);
  auto eval2 = model->forward(x);
  EXPECT_TRUE(torch::equal(eval1, eval2));
  // Batch statistics (train) against running statistics (eval).
  EXPECT_GT(max_abs_diff(train1, eval1), 1e-4);
  // Dropout (and EfficientNet's stochastic depth) draws anew each pass;
  // the fast net has no dropout, so its train passes agree.
  if (GetParam().type != "fast") EXPECT_FALSE(torch::equal(train1, train2));
}

// Logits for channels_last input, then with the conv weights converted too
// (as the trainer runs it), against contiguous NCHW; `tolerance` is relative
// where logits exceed 1.
void expect_same_in_channels_last(Net& model, const torch::Tensor& x, double tolerance) {
  auto reference = model.forward(x);
  ASSERT_GT(reference.abs().max().item<double>(), 1e-2) << "logits too small for the comparison to mean anything";
  tolerance *= std::max(1.0, reference.abs().max().item<double>());
  const auto cl = torch::MemoryFormat::ChannelsLast;
  EXPECT_LE(max_abs_diff(reference, model.forward(x.contiguous(cl))), tolerance) << x.dtype();
  for (auto& p : model.parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(cl));
  }
  EXPECT_LE(max_abs_diff(reference, model.forward(x.contiguous(cl))), tolerance) << x.dtype();
  for (auto& p : model.parameters()) p.set_data(p.contiguous());
}

TEST_P(EveryModel, ChannelsLastGivesTheSameLogits) {
  auto model = build(GetParam());
  calibrate_norms(*model);
  torch::NoGradGuard no_grad;
  auto x = images(3);
  // In float64 rounding stays near 1e-12, so 1e-5 is met exactly when every
  // layer honours the layout (a flatten or pad assuming NCHW strides would
  // be off by O(1)).
  model->to(torch::kFloat64);
  expect_same_in_channels_last(*model, x.to(torch::kFloat64), 1e-5);
  // In float32, as training runs, the channels_last kernels sum in another
  // order and deep models drift by up to ~2e-5 relative (ResNet-50).
  model->to(torch::kFloat32);
  expect_same_in_channels_last(*model, x, 1e-4);
}

TEST_P(EveryModel, CheckpointRoundTripGivesIdenticalLogits) {
  auto model = build(GetParam());
  calibrate_norms(*model);  // running statistics off their initial values
  testing::TempDir tmp("models");
  const std::string path = (tmp / "model.pt").string();
  save_checkpoint(path, *model, GetParam(), nullptr, nlohmann::json::object());
  auto loaded = load_model(path, torch::kCPU);
  EXPECT_EQ(loaded.spec.type, GetParam().type);
  torch::NoGradGuard no_grad;
  auto x = images(2);
  EXPECT_TRUE(torch::equal(model->forward(x), loaded.model->forward(x)));
}

int64_t number_after(const std::string& text, const std::string& label) {
  std::smatch m;
  const std::regex re(label + ": ([0-9,]+)");
  if (!std::regex_search(text, m, re)) return -1;
  std::string digits = m[1];
  digits.erase(std::remove(digits.begin(), digits.end(), ','), digits.end());
  return std::stoll(digits);
}

TEST_P(EveryModel, SummaryTotalsMatchTheModel) {
  auto model = build(GetParam());
  model->train();
  std::ostringstream out;
  print_summary(*model, GetParam(), out);
  const std::string text = out.str();
  EXPECT_EQ(number_after(text, "Total params"), count_parameters(*model)) << text;
  EXPECT_EQ(number_after(text, "Trainable params"), count_parameters(*model, true)) << text;
  EXPECT_EQ(number_after(text, "Non-trainable params"), count_parameters(*model) - count_parameters(*model, true));
  EXPECT_GT(number_after(text, "Forward FLOPs per image"), 0) << text;
  EXPECT_TRUE(model->is_training()) << "print_summary left the model in eval mode";

  // Every parameter sits in a traced layer, each layer with a name.
  auto s = summarize(*model);
  EXPECT_EQ(s.untraced_params, 0);
  int64_t row_params = 0;
  for (const auto& l : s.layers) {
    row_params += l.params;
    EXPECT_NE(l.name, "?");
  }
  EXPECT_EQ(row_params, s.total_params);
  EXPECT_EQ(s.layers.back().output_shape, (std::vector<int64_t>{1, 10}));
}

INSTANTIATE_TEST_SUITE_P(Zoo, EveryModel,
                         ::testing::Values(spec_of("cnn"), spec_of("resnet", 18), spec_of("resnet", 20),
                                           spec_of("resnet", 50), spec_of("efficientnet"),
                                           spec_of("efficientnet", 18, 64), spec_of("fast"), spec_of("mlp")),
                         [](const ::testing::TestParamInfo<ModelSpec>& info) { return label_of(info.param); });

// ---------------------------------------------------------------------------

TEST(Summary, CnnFlopsAndShapesAreTheHandCountedOnes) {
  auto model = build_model(spec_of("cnn"));
  auto s = summarize(*model);
  // 2 x multiply-adds: convs at 32x32 (3->32, 32->32), 16x16 (32->64,
  // 64->64), 8x8 (64->128, 128->128), dense 2048->512, 512->10.
  const int64_t flops = 2 * (32 * 32 * 32 * 3 * 9 + 32 * 32 * 32 * 32 * 9 + 16 * 16 * 64 * 32 * 9 +
                             16 * 16 * 64 * 64 * 9 + 8 * 8 * 128 * 64 * 9 + 8 * 8 * 128 * 128 * 9 +
                             2048 * 512 + 512 * 10);
  EXPECT_EQ(s.flops, flops);
  ASSERT_FALSE(s.layers.empty());
  EXPECT_EQ(s.layers.front().name, "features.0");
  EXPECT_EQ(s.layers.front().type, "Conv2d");
  EXPECT_EQ(s.layers.front().output_shape, (std::vector<int64_t>{1, 32, 32, 32}));
  EXPECT_EQ(s.layers.front().params, 3 * 32 * 9);
}

TEST(Summary, ResNetShowsNestedBlockLayers) {
  auto model = build_model(spec_of("resnet", 20));
  std::ostringstream out;
  print_summary(*model, spec_of("resnet", 20), out);
  EXPECT_NE(out.str().find("layer3.2.conv2 (Conv2d)"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("[1, 64, 8, 8]"), std::string::npos) << out.str();
}

TEST(Summary, EfficientNetReducesNativeInput8xAndUpsampledInput32x) {
  auto shape_of = [](const ModelSummary& s, const std::string& name) {
    for (const auto& l : s.layers) {
      if (l.name == name) return l.output_shape;
    }
    return std::vector<int64_t>{};
  };
  auto native = summarize(*build_model(spec_of("efficientnet")));
  EXPECT_EQ(shape_of(native, "features.0.0"), (std::vector<int64_t>{1, 32, 32, 32}));
  EXPECT_EQ(shape_of(native, "features.2.0.block.3.0"), (std::vector<int64_t>{1, 24, 32, 32}));
  EXPECT_EQ(shape_of(native, "features.8.0"), (std::vector<int64_t>{1, 1280, 4, 4}));
  EXPECT_TRUE(shape_of(native, "upsample").empty());

  auto upsampled = summarize(*build_model(spec_of("efficientnet", 18, 224)));
  EXPECT_EQ(upsampled.layers.front().name, "upsample");
  EXPECT_EQ(upsampled.layers.front().output_shape, (std::vector<int64_t>{1, 3, 224, 224}));
  EXPECT_EQ(shape_of(upsampled, "features.0.0"), (std::vector<int64_t>{1, 32, 112, 112}));
  EXPECT_EQ(shape_of(upsampled, "features.8.0"), (std::vector<int64_t>{1, 1280, 7, 7}));
}

// ---------------------------------------------------------------------------
// Freezing the backbone for head-only fine-tuning.

TEST(Freeze, OnlyTheHeadTrainsAndBackboneNormsStayInEvalMode) {
  auto model = build_model(spec_of("efficientnet"));
  set_backbone_trainable(*model, false);
  EXPECT_EQ(count_parameters(*model, true), 1280 * 10 + 10);
  for (const auto& p : model->named_parameters()) {
    EXPECT_EQ(p.value().requires_grad(), p.key().rfind("classifier.", 0) == 0) << p.key();
  }
  model->train();
  auto stem_norm = model->named_modules()["features.0.1"];
  EXPECT_FALSE(stem_norm->is_training());
  EXPECT_TRUE(model->named_modules()["classifier.0"]->is_training());  // dropout
  const auto mean_before = model->named_buffers()["features.0.1.running_mean"].clone();
  {
    torch::NoGradGuard no_grad;
    model->forward(images(4));
  }
  EXPECT_TRUE(torch::equal(mean_before, model->named_buffers()["features.0.1.running_mean"]));

  set_backbone_trainable(*model, true);
  model->train();
  EXPECT_TRUE(stem_norm->is_training());
  EXPECT_EQ(count_parameters(*model, true), count_parameters(*model));
}

TEST(Freeze, UnfreezingLeavesTheFastNetsFixedWeightsFixed) {
  auto model = build_model(spec_of("fast"));
  set_backbone_trainable(*model, false);
  EXPECT_EQ(count_parameters(*model, true), 256 * 10);
  set_backbone_trainable(*model, true);
  EXPECT_EQ(count_parameters(*model, true), 1'971'352);
  EXPECT_FALSE(model->named_parameters()["whiten.weight"].requires_grad());
  EXPECT_FALSE(model->named_parameters()["block2.norm1.weight"].requires_grad());
  EXPECT_TRUE(model->named_parameters()["block2.norm1.bias"].requires_grad());
}

TEST(Freeze, CnnHeadKeepsItsOwnNormInTrainingMode) {
  auto model = build_model(spec_of("cnn"));
  set_backbone_trainable(*model, false);
  model->train();
  EXPECT_FALSE(model->named_modules()["features.1"]->is_training());
  EXPECT_TRUE(model->named_modules()["classifier.2"]->is_training());  // BatchNorm1d in the head
}

// ---------------------------------------------------------------------------
// Whitening on real CIFAR-10 patches.

TEST(FastNet, WhiteningDecorrelatesTrainingPatches) {
  auto batch = read_cifar_batch(testing::batches_dir() / "data_batch_1.bin");
  auto mean = torch::tensor({0.4914, 0.4822, 0.4465}).view({1, 3, 1, 1});
  auto std = torch::tensor({0.2470, 0.2435, 0.2616}).view({1, 3, 1, 1});
  auto x = ((batch.images.slice(0, 0, 1000).to(torch::kFloat32) / 255.0) - mean) / std;

  auto model = build_model(spec_of("fast"));
  init_whitening(*model, x);
  auto w = model->named_parameters()["whiten.weight"];
  ASSERT_EQ(w.sizes(), (std::vector<int64_t>{24, 3, 2, 2}));
  EXPECT_TRUE(torch::equal(w.slice(0, 12), -w.slice(0, 0, 12)));
  EXPECT_FALSE(w.requires_grad());

  // The first 12 filters map patches to coordinates with a diagonal second
  // moment matrix, lambda / (lambda + 5e-4), largest first.
  torch::NoGradGuard no_grad;
  auto y = torch::conv2d(x.to(torch::kFloat64), w.slice(0, 0, 12).to(torch::kFloat64));
  auto flat = y.permute({1, 0, 2, 3}).reshape({12, -1});
  auto moments = flat.mm(flat.t()) / flat.size(1);
  auto diag = moments.diagonal();
  auto off = moments - torch::diag(diag);
  EXPECT_LT(off.abs().max().item<double>(), 1e-4);
  EXPECT_GT(diag[0].item<double>(), 0.99);
  EXPECT_LE(diag.max().item<double>(), 1.0 + 1e-6);
  EXPECT_GT(diag.min().item<double>(), 0.0);
  for (int i = 1; i < 12; ++i) EXPECT_LE(diag[i].item<double>(), diag[i - 1].item<double>() + 1e-9) << i;

  EXPECT_THROW(init_whitening(*build_model(spec_of("cnn")), x), UserError);
}

}  // namespace
}  // namespace cifar
