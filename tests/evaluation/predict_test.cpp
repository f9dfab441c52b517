#include "evaluation/predict.h"

#include <stb/stb_image_write.h>

#include <fstream>
#include <sstream>

#include "common/error.h"
#include "data/cifar_reader.h"
#include "data/dataset.h"
#include "evaluation/evaluate.h"
#include "evaluation/image_io.h"
#include "evaluation/metrics.h"
#include "models/registry.h"
#include "test_util.h"
#include "training/checkpoint.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;
using testing::write_bytes;

// A randomly initialised CNN saved as a checkpoint: predict must give what
// the in-memory model gives; whether it is any good does not matter here.
struct SavedModel {
  TempDir tmp{"predict"};
  ModelSpec spec;
  NetPtr model;
  fs::path checkpoint;
  SavedModel() {
    torch::manual_seed(11);
    ModelConfig mc;
    mc.model_type = "cnn";
    const auto norm = make_normalization("standard");
    spec = make_spec(mc, read_class_names(testing::batches_dir() / "batches.meta.txt"), norm.mean, norm.std);
    model = build_model(spec);
    model->eval();
    checkpoint = tmp / "model.ckpt";
    save_checkpoint(checkpoint.string(), *model, spec, nullptr, nlohmann::json::object());
  }
  Normalization norm() const { return {spec.mean, spec.std}; }
};

struct Run {
  int code = -1;
  std::string out, err;
};

Run predict(const PredictOptions& options) {
  std::ostringstream out, err;
  Run r;
  r.code = run_predict(options, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string png_chunk_header(uint32_t width, uint32_t height) {
  auto be32 = [](uint32_t v) {
    return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  };
  // Signature + IHDR (8-bit RGB) + a zero CRC: stb reads the header without
  // checking chunk CRCs, and there is no pixel data at all.
  return std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + "IHDR" + be32(width) + be32(height) +
         std::string("\x08\x02\x00\x00\x00", 5) + be32(0);
}

std::string bmp_header(int32_t width, int32_t height) {
  auto le32 = [](uint32_t v) {
    return std::string{char(v), char(v >> 8), char(v >> 16), char(v >> 24)};
  };
  auto le16 = [](uint16_t v) { return std::string{char(v), char(v >> 8)}; };
  return "BM" + le32(54) + le32(0) + le32(54) + le32(40) + le32(width) + le32(height) + le16(1) +
         le16(24) + le32(0) + le32(0) + le32(2835) + le32(2835) + le32(0) + le32(0);
}

TEST(ImageIo, PngRoundTripIsExact) {
  TempDir tmp("png");
  auto test = read_cifar_batch(testing::batches_dir() / "test_batch.bin").slice(0, 3);
  for (int64_t i = 0; i < 3; ++i) {
    const auto path = tmp / ("sub/img" + std::to_string(i) + ".png");
    write_png(path, test.images[i]);
    auto back = decode_image_file(path);
    EXPECT_EQ(back.sizes(), (std::vector<int64_t>{3, 32, 32}));
    EXPECT_TRUE(torch::equal(back, test.images[i])) << i;
  }
  EXPECT_THROW(write_png(tmp / "bad.png", torch::zeros({3, 4, 4})), std::invalid_argument);
}

TEST(ImageIo, GrayAndRgbaBecomeRgb) {
  TempDir tmp("gray");
  const int w = 5, h = 4;
  std::vector<uint8_t> gray(w * h), rgba(w * h * 4);
  for (int i = 0; i < w * h; ++i) {
    gray[i] = static_cast<uint8_t>(i * 12);
    rgba[4 * i] = static_cast<uint8_t>(i);
    rgba[4 * i + 1] = static_cast<uint8_t>(100 + i);
    rgba[4 * i + 2] = static_cast<uint8_t>(200 + i);
    rgba[4 * i + 3] = static_cast<uint8_t>(i * 10);  // alpha: dropped
  }
  ASSERT_TRUE(stbi_write_png((tmp / "gray.png").c_str(), w, h, 1, gray.data(), w));
  ASSERT_TRUE(stbi_write_png((tmp / "rgba.png").c_str(), w, h, 4, rgba.data(), w * 4));
  auto g = decode_image_file(tmp / "gray.png");
  ASSERT_EQ(g.sizes(), (std::vector<int64_t>{3, h, w}));
  for (int c = 0; c < 3; ++c) EXPECT_EQ(g[c][1][2].item<int64_t>(), (1 * w + 2) * 12);
  auto a = decode_image_file(tmp / "rgba.png");
  ASSERT_EQ(a.sizes(), (std::vector<int64_t>{3, h, w}));
  EXPECT_EQ(a[0][3][4].item<int64_t>(), 19);
  EXPECT_EQ(a[1][3][4].item<int64_t>(), 119);
  EXPECT_EQ(a[2][3][4].item<int64_t>(), 219);
}

TEST(ImageIo, ResizeAveragesWhenShrinkingAndIsBilinearWhenEnlarging) {
  torch::manual_seed(3);
  auto big = torch::randint(0, 256, {3, 64, 64}, torch::kUInt8);
  auto small = resize_image(big, 32, 32);
  ASSERT_EQ(small.sizes(), (std::vector<int64_t>{3, 32, 32}));
  auto pooled = torch::avg_pool2d(big.to(torch::kFloat32).unsqueeze(0), 2).squeeze(0);
  EXPECT_LE((small.to(torch::kFloat32) - pooled).abs().max().item<float>(), 1.0f);

  // 64x48 (W x H): shrinks by 2 across, by 1.5 down; a flat colour stays flat.
  auto flat = torch::empty({3, 48, 64}, torch::kUInt8);
  flat[0].fill_(10), flat[1].fill_(120), flat[2].fill_(250);
  auto flat32 = resize_image(flat, 32, 32);
  ASSERT_EQ(flat32.sizes(), (std::vector<int64_t>{3, 32, 32}));
  EXPECT_TRUE(torch::equal(flat32, flat.slice(1, 0, 32).slice(2, 0, 32)));

  auto tiny = torch::randint(0, 256, {3, 16, 16}, torch::kUInt8);
  auto up = resize_image(tiny, 32, 32);
  auto bilinear = torch::nn::functional::interpolate(
                      tiny.to(torch::kFloat32).unsqueeze(0),
                      torch::nn::functional::InterpolateFuncOptions()
                          .size(std::vector<int64_t>{32, 32})
                          .mode(torch::kBilinear)
                          .align_corners(false))
                      .squeeze(0);
  EXPECT_LE((up.to(torch::kFloat32) - bilinear).abs().max().item<float>(), 1.0f);
  EXPECT_TRUE(torch::equal(resize_image(tiny, 16, 16), tiny));
}

TEST(Predict, FilesGiveExactlyTheTensorPredictions) {
  SavedModel m;
  auto test = read_cifar_batch(testing::batches_dir() / "test_batch.bin").slice(0, 40);
  const auto dir = m.tmp / "images";
  for (int64_t i = 0; i < test.size(); ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "img_%02lld.png", static_cast<long long>(i));
    write_png(dir / name, test.images[i]);
  }
  write_bytes(dir / "notes.txt", "not an image, and not picked up from a folder");
  PredictOptions opt;
  opt.load_model = m.checkpoint.string();
  opt.inputs = {dir.string()};
  opt.output = (m.tmp / "out" / "predictions.json").string();
  opt.device = "cpu";
  auto run = predict(opt);
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  EXPECT_EQ(count_lines(run.out), 40);

  EvalOptions eval;
  auto logits = predict_logits(*m.model, test.images, m.norm(), eval);
  auto top = top_k_predictions(logits, 3);
  std::ifstream in(opt.output);
  auto j = nlohmann::json::parse(in);
  ASSERT_EQ(j.size(), 40u);
  std::istringstream lines(run.out);
  for (int64_t i = 0; i < 40; ++i) {
    const auto& entry = j[i];
    EXPECT_EQ(fs::path(entry["file"].get<std::string>()).filename().string(),
              "img_" + std::string(i < 10 ? "0" : "") + std::to_string(i) + ".png");
    ASSERT_EQ(entry["predictions"].size(), 3u);
    for (int64_t k = 0; k < 3; ++k) {
      EXPECT_EQ(entry["predictions"][k]["class"], m.spec.class_names[top.indices[i][k].item<int64_t>()]);
      EXPECT_NEAR(entry["predictions"][k]["confidence"].get<double>(), top.probs[i][k].item<double>(), 1e-6);
    }
    std::string line;
    std::getline(lines, line);
    const std::string expected_start =
        entry["file"].get<std::string>() + ": " + m.spec.class_names[top.indices[i][0].item<int64_t>()] + " ";
    EXPECT_EQ(line.rfind(expected_start, 0), 0u) << line;
    EXPECT_EQ(std::count(line.begin(), line.end(), ','), 2) << line;
  }
}

TEST(Predict, EachBadFileGetsItsOwnErrorAndTheOthersStillRun) {
  SavedModel m;
  auto test = read_cifar_batch(testing::batches_dir() / "test_batch.bin").slice(0, 2);
  const auto dir = m.tmp / "mixed";
  write_png(dir / "good1.png", test.images[0]);
  write_png(dir / "good2.png", test.images[1]);
  write_bytes(dir / "text.png", "hello, I am plain text pretending to be a PNG\n");
  write_bytes(dir / "empty.png", "");
  write_bytes(dir / "huge.png", png_chunk_header(100000, 100000));
  write_bytes(dir / "huge.bmp", bmp_header(100000, 100000));
  write_bytes(dir / "big.png", png_chunk_header(10000, 10000));  // 100 MP: over our 64 MP limit
  write_bytes(dir / "truncated.png", png_chunk_header(32, 32));  // header, then nothing
  PredictOptions opt;
  opt.load_model = m.checkpoint.string();
  opt.inputs = {(dir / "good1.png").string(), (dir / "missing.png").string(), (dir / "text.png").string(),
                (dir / "empty.png").string(),  (dir / "huge.png").string(),    (dir / "huge.bmp").string(),
                (dir / "big.png").string(),    (dir / "truncated.png").string(), (dir / "good2.png").string()};
  opt.output = (m.tmp / "p.CSV").string();
  opt.device = "cpu";
  auto run = predict(opt);
  EXPECT_EQ(run.code, 1);
  EXPECT_EQ(count_lines(run.out), 2) << run.out;
  EXPECT_TRUE(contains(run.out, (dir / "good1.png").string() + ": ")) << run.out;
  EXPECT_TRUE(contains(run.out, (dir / "good2.png").string() + ": ")) << run.out;
  EXPECT_EQ(count_lines(run.err), 7) << run.err;
  auto has_error = [&](const std::string& file, const std::string& why) {
    return contains(run.err, "error: " + (dir / file).string() + ": " + why);
  };
  EXPECT_TRUE(has_error("missing.png", "file not found")) << run.err;
  EXPECT_TRUE(has_error("text.png", "not a PNG, JPEG or BMP image")) << run.err;
  EXPECT_TRUE(has_error("empty.png", "empty file")) << run.err;
  EXPECT_TRUE(has_error("huge.png", "PNG header claims 100000x100000 pixels: image too large")) << run.err;
  EXPECT_TRUE(has_error("huge.bmp", "BMP header claims 100000x100000 pixels: image too large")) << run.err;
  EXPECT_TRUE(has_error("big.png", "PNG header claims 10000x10000 pixels: image too large")) << run.err;
  EXPECT_TRUE(has_error("truncated.png", "corrupt or truncated PNG data")) << run.err;

  std::ifstream in(opt.output);
  std::stringstream csv;
  csv << in.rdbuf();
  EXPECT_EQ(count_lines(csv.str()), 1 + 2 * 3) << csv.str();
  EXPECT_EQ(csv.str().rfind("file,rank,class,confidence\n", 0), 0u);
  EXPECT_TRUE(contains(csv.str(), (dir / "good2.png").string() + ",3,"));
}

TEST(Predict, GrayRgbaAndOddSizedImagesArePredictedAsResizedRgb) {
  SavedModel m;
  const auto dir = m.tmp / "odd";
  fs::create_directories(dir);
  torch::manual_seed(5);
  auto photo = torch::randint(0, 256, {48, 64, 3}, torch::kUInt8);  // 64 wide, 48 high
  ASSERT_TRUE(stbi_write_png((dir / "wide.PNG").c_str(), 64, 48, 3, photo.data_ptr<uint8_t>(), 64 * 3));
  ASSERT_TRUE(stbi_write_bmp((dir / "wide.bmp").c_str(), 64, 48, 3, photo.data_ptr<uint8_t>()));
  ASSERT_TRUE(stbi_write_jpg((dir / "wide.jpeg").c_str(), 64, 48, 3, photo.data_ptr<uint8_t>(), 95));
  auto gray = torch::randint(0, 256, {32, 32}, torch::kUInt8);
  ASSERT_TRUE(stbi_write_png((dir / "gray.png").c_str(), 32, 32, 1, gray.data_ptr<uint8_t>(), 32));
  auto rgba = torch::randint(0, 256, {32, 32, 4}, torch::kUInt8);
  ASSERT_TRUE(stbi_write_png((dir / "rgba.png").c_str(), 32, 32, 4, rgba.data_ptr<uint8_t>(), 32 * 4));

  PredictOptions opt;
  opt.load_model = m.checkpoint.string();
  opt.inputs = {dir.string()};
  opt.output = (m.tmp / "p.json").string();
  opt.top_k = 10;
  opt.device = "cpu";
  auto run = predict(opt);
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(count_lines(run.out), 5) << run.out;

  auto wide = decode_image_file(dir / "wide.PNG");
  EXPECT_EQ(wide.sizes(), (std::vector<int64_t>{3, 48, 64}));
  EXPECT_TRUE(torch::equal(wide, photo.permute({2, 0, 1})));
  EXPECT_TRUE(torch::equal(decode_image_file(dir / "wide.bmp"), wide));
  auto g = decode_image_file(dir / "gray.png");
  EXPECT_TRUE(torch::equal(g[0], gray) && torch::equal(g[1], gray) && torch::equal(g[2], gray));
  EXPECT_TRUE(torch::equal(decode_image_file(dir / "rgba.png"), rgba.slice(2, 0, 3).permute({2, 0, 1})));

  // Sorted by name: gray.png, rgba.png, wide.PNG, wide.bmp, wide.jpeg.
  std::vector<torch::Tensor> expected;
  for (const char* name : {"gray.png", "rgba.png", "wide.PNG", "wide.bmp", "wide.jpeg"}) {
    expected.push_back(resize_image(decode_image_file(dir / name), 32, 32));
  }
  auto top = top_k_predictions(predict_logits(*m.model, torch::stack(expected), m.norm(), EvalOptions{}), 10);
  std::ifstream in(opt.output);
  auto j = nlohmann::json::parse(in);
  ASSERT_EQ(j.size(), 5u);
  EXPECT_EQ(fs::path(j[2]["file"].get<std::string>()).filename(), "wide.PNG");
  for (int64_t i = 0; i < 5; ++i) {
    ASSERT_EQ(j[i]["predictions"].size(), 10u);
    double sum = 0;
    for (int64_t k = 0; k < 10; ++k) {
      EXPECT_EQ(j[i]["predictions"][k]["class"], m.spec.class_names[top.indices[i][k].item<int64_t>()]);
      EXPECT_NEAR(j[i]["predictions"][k]["confidence"].get<double>(), top.probs[i][k].item<double>(), 1e-6);
      sum += j[i]["predictions"][k]["confidence"].get<double>();
    }
    EXPECT_NEAR(sum, 1.0, 1e-9);
  }
}

TEST(Predict, UnknownOutputTypeIsRefusedBeforeAnyWork) {
  PredictOptions opt;
  opt.load_model = "/nonexistent/model.ckpt";  // would fail second, if it were reached
  opt.inputs = {"/nonexistent/cat.png"};
  opt.output = "predictions.txt";
  try {
    predict(opt);
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_TRUE(contains(e.what(), "--output predictions.txt")) << e.what();
    EXPECT_TRUE(contains(e.what(), ".json or FILE.csv")) << e.what();
    EXPECT_EQ(e.exit_code(), kExitBadInput);
  }
  opt.output = "";
  EXPECT_THROW(predict(opt), UserError);  // now the checkpoint is what fails
}

TEST(Predict, EmptyFolderIsAnErrorLine) {
  SavedModel m;
  const auto empty = m.tmp / "nothing_here";
  fs::create_directories(empty);
  auto test = read_cifar_batch(testing::batches_dir() / "test_batch.bin").slice(0, 1);
  write_png(m.tmp / "one.bmp.png", test.images[0]);
  PredictOptions opt;
  opt.load_model = m.checkpoint.string();
  opt.inputs = {empty.string(), (m.tmp / "one.bmp.png").string()};
  opt.device = "cpu";
  opt.top_k = 1;
  auto run = predict(opt);
  EXPECT_EQ(run.code, 1);
  EXPECT_TRUE(contains(run.err, "error: " + empty.string() + ": folder holds no")) << run.err;
  EXPECT_EQ(count_lines(run.out), 1);
  EXPECT_EQ(std::count(run.out.begin(), run.out.end(), ','), 0) << run.out;
}

}  // namespace
}  // namespace cifar
