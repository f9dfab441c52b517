#include "evaluation/predict.h"

#include <stb/stb_image_write.h>

#include <jpeglib.h>

#include <fstream>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "data/cifar_reader.h"
#include "data/dataset.h"
#include "evaluation/evaluate.h"
#include "data/image_io.h"
#include "metrics/eval_metrics.h"
#include "models/registry.h"
#include "test_util.h"
#include "checkpoint/checkpoint.h"

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
  EXPECT_EQ(run.err, "note: " + dir.string() +
                         ": skipped 1 entry that is not a .png, .jpg, .jpeg or .bmp file (subfolders are not searched)\n");
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

// A folder's subfolders, other files and dangling links are passed over
// with a note, so a folder of .webp files or of class folders is not a
// silent no-op.
TEST(Predict, AFoldersSkippedEntriesAreCounted) {
  testing::TempDir tmp("inputs");
  testing::write_bytes(tmp / "pics/a.png", "x");
  testing::write_bytes(tmp / "pics/b.webp", "x");
  fs::create_directories(tmp / "pics/cats");
  fs::create_symlink(tmp / "gone.png", tmp / "pics/dangling.png");
  testing::write_bytes(tmp / "plain/c.JPG", "x");
  const auto inputs = expand_image_inputs({(tmp / "pics").string(), (tmp / "plain").string()});
  EXPECT_EQ(inputs.files, (std::vector<fs::path>{tmp / "pics/a.png", tmp / "plain/c.JPG"}));
  ASSERT_EQ(inputs.notes.size(), 1u);
  EXPECT_EQ(inputs.notes[0], (tmp / "pics").string() + ": skipped 3 entries that are not a .png, .jpg, .jpeg or "
                                                       ".bmp file (subfolders are not searched)");
  EXPECT_TRUE(inputs.errors.empty());
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
  EXPECT_EQ(run.code, kExitBadInput);  // bad files are bad input, as bad flags are
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
  // Every input keeps its rows, in input order: 3 per good file, 1 per bad one.
  EXPECT_EQ(count_lines(csv.str()), 1 + 2 * 3 + 7) << csv.str();
  EXPECT_EQ(csv.str().rfind("file,rank,class,confidence,error\n", 0), 0u);
  EXPECT_TRUE(contains(csv.str(), (dir / "good2.png").string() + ",3,"));
  EXPECT_TRUE(contains(csv.str(), "\n" + (dir / "missing.png").string() + ",,,," + (dir / "missing.png").string() +
                                      ": file not found\n" + (dir / "text.png").string() + ",,,,"))
      << csv.str();
  EXPECT_LT(csv.str().find((dir / "good1.png").string() + ",3,"), csv.str().find((dir / "missing.png").string()));
}

TEST(Predict, GrayRgbaAndOddSizedImagesArePredictedAsCroppedRgb) {
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

  // Sorted by name: gray.png, rgba.png, wide.PNG, wide.bmp, wide.jpeg; the
  // wide ones cropped to their centre square (--resize crop, the default).
  std::vector<torch::Tensor> expected;
  for (const char* name : {"gray.png", "rgba.png", "wide.PNG", "wide.bmp", "wide.jpeg"}) {
    expected.push_back(square_image(decode_image_file(dir / name), 32, "crop"));
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

// A non-square photo keeps its aspect ratio: cropped to its centre
// square, or padded with black borders; squashed only when asked.
TEST(ImageIo, SquareImagesKeepTheAspectRatioUnlessSquashed) {
  // 8 high, 16 wide: the left half 10, the right half 200.
  auto wide = torch::cat({torch::full({3, 8, 8}, 10, torch::kUInt8), torch::full({3, 8, 8}, 200, torch::kUInt8)}, 2);
  wide.narrow(2, 4, 8).fill_(99);  // the centre square, columns 4..11
  EXPECT_TRUE(torch::equal(square_image(wide, 8, "crop"), torch::full({3, 8, 8}, 99, torch::kUInt8)));
  const auto padded = square_image(wide, 8, "pad");
  EXPECT_TRUE(torch::equal(padded.narrow(1, 0, 2), torch::zeros({3, 2, 8}, torch::kUInt8)));  // borders above
  EXPECT_TRUE(torch::equal(padded.narrow(1, 6, 2), torch::zeros({3, 2, 8}, torch::kUInt8)));  // and below
  EXPECT_TRUE(torch::equal(padded.narrow(1, 2, 4), resize_image(wide, 4, 8)));
  EXPECT_TRUE(torch::equal(square_image(wide, 8, "squash"), resize_image(wide, 8, 8)));
  const auto square = torch::randint(0, 256, {3, 8, 8}, torch::kUInt8);
  for (const char* mode : {"crop", "pad", "squash"}) EXPECT_TRUE(torch::equal(square_image(square, 8, mode), square));
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
  opt.output = (m.tmp / "p.json").string();
  auto run = predict(opt);
  EXPECT_EQ(run.code, kExitBadInput);
  EXPECT_TRUE(contains(run.err, "error: " + empty.string() + ": folder holds no")) << run.err;
  EXPECT_EQ(count_lines(run.out), 1);
  EXPECT_EQ(std::count(run.out.begin(), run.out.end(), ','), 0) << run.out;
  // The folder is in the output file too, under its own name.
  const auto j = nlohmann::json::parse(read_file(opt.output));
  ASSERT_EQ(j.size(), 2u) << j;
  EXPECT_EQ(j[0]["file"], empty.string());
  EXPECT_TRUE(contains(j[0]["error"].get<std::string>(), "folder holds no")) << j;
  EXPECT_TRUE(j[1].contains("predictions")) << j;
}

// A name with a line break would forge a prediction line on stdout; a name
// (or a class name) that is not UTF-8 made the JSON writer throw, losing
// the output file, and a checkpoint with such a class name could not be
// saved at all.
TEST(Predict, OddFileAndClassNamesArePrintedSafelyAndReachTheJson) {
  TempDir tmp("names");
  torch::manual_seed(3);
  ModelConfig mc;
  mc.model_type = "cnn";
  const auto norm = make_normalization("standard");
  auto names = read_class_names(testing::batches_dir() / "batches.meta.txt");
  for (auto& name : names) name = "caf\xE9 " + name;  // Latin-1, as an old meta file may be
  const ModelSpec spec = make_spec(mc, names, norm.mean, norm.std);
  auto model = build_model(spec);
  save_checkpoint((tmp / "model.ckpt").string(), *model, spec, nullptr, nlohmann::json::object());

  auto test = read_cifar_batch(testing::batches_dir() / "test_batch.bin").slice(0, 2);
  const fs::path forged = tmp / "a.png\nforged.png: cat 1.000";
  const fs::path latin1 = tmp / "caf\xE9.png";
  write_png(forged, test.images[0]);
  write_png(latin1, test.images[1]);
  PredictOptions opt;
  opt.load_model = (tmp / "model.ckpt").string();
  opt.inputs = {forged.string(), latin1.string()};
  opt.output = (tmp / "p.json").string();
  opt.device = "cpu";
  opt.top_k = 1;
  auto run = predict(opt);
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(count_lines(run.out), 2) << run.out;
  EXPECT_EQ(run.out.rfind((tmp / "a.png?forged.png: cat 1.000: caf\xEF\xBF\xBD ").string(), 0), 0u) << run.out;
  EXPECT_TRUE(contains(run.out, "\n" + latin1.string() + ": caf\xEF\xBF\xBD ")) << run.out;

  const auto j = nlohmann::json::parse(read_file(opt.output));
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["file"], forged.string());  // JSON escapes the line break itself
  EXPECT_EQ(j[1]["file"], (tmp / "caf\xEF\xBF\xBD.png").string());
  EXPECT_EQ(j[1]["predictions"][0]["class"].get<std::string>().rfind("caf\xEF\xBF\xBD ", 0), 0u) << j;
}

TEST(Predict, AnUnwritableOutputSaysWhatToDo) {
  SavedModel m;
  auto test = read_cifar_batch(testing::batches_dir() / "test_batch.bin").slice(0, 1);
  write_png(m.tmp / "one.png", test.images[0]);
  PredictOptions opt;
  opt.load_model = m.checkpoint.string();
  opt.inputs = {(m.tmp / "one.png").string()};
  opt.device = "cpu";
  // /proc takes no new files, even from root (tests may run as root, where
  // permission bits do not stop anything).
  opt.output = "/proc/cifar10_predict_test.csv";
  try {
    predict(opt);
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("cannot create a temporary file beside /proc/cifar10_predict_test.csv: ", 0),
              0u)
        << e.what();
    EXPECT_TRUE(contains(e.what(), "(hint: check that /proc exists and is writable, or write the file elsewhere)"))
        << e.what();
  }
}

}  // namespace
}  // namespace cifar

namespace cifar {
namespace {

std::string jpeg_header(uint16_t width, uint16_t height) {
  // SOI, then a baseline SOF0 frame header for 3 components and nothing
  // else: enough for stb to report the size, no pixels at all.
  std::string h = "\xFF\xD8\xFF\xC0";
  h += std::string{'\x00', '\x11', '\x08', char(height >> 8), char(height & 0xFF), char(width >> 8),
                   char(width & 0xFF), '\x03'};
  for (char id : {'\x01', '\x02', '\x03'}) h += std::string{id, '\x11', '\x00'};
  return h;
}

std::string decode_error(const std::string& bytes) {
  try {
    decode_image(bytes, "mem.img");
  } catch (const UserError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    return what;
  }
  return "(no error)";
}

TEST(ImageIo, BytesDecodeAsTheFileDoesAndHugeHeadersAreRefusedBeforeAllocating) {
  TempDir tmp("mem");
  auto test = read_cifar_batch(testing::batches_dir() / "test_batch.bin").slice(0, 1);
  write_png(tmp / "a.png", test.images[0]);
  EXPECT_TRUE(torch::equal(decode_image(read_file(tmp / "a.png"), "a.png"), decode_image_file(tmp / "a.png")));
  EXPECT_EQ(decode_error(""), "mem.img: empty file (0 bytes)");
  EXPECT_EQ(decode_error("GIF89a"), "mem.img: not a PNG, JPEG or BMP image");
  // 65000x65000 JPEG: 12 GB as RGB, stated in 23 bytes.
  EXPECT_NE(decode_error(jpeg_header(65000, 65000)).find("JPEG header claims 65000x65000 pixels: image too large"),
            std::string::npos);
  // Each side under 16384 but 16000x16000 = 256 MP, over the 64 MP limit.
  EXPECT_NE(decode_error(jpeg_header(16000, 16000)).find("JPEG header claims 16000x16000 pixels"), std::string::npos);
  EXPECT_NE(decode_error(jpeg_header(32, 32)).find("corrupt or truncated JPEG data"), std::string::npos);
  EXPECT_NE(decode_error(png_chunk_header(70000, 1)).find("PNG header claims 70000x1 pixels"), std::string::npos);
  EXPECT_NE(decode_error(bmp_header(1, -100000)).find("BMP header claims 1x100000 pixels"), std::string::npos);
}

// A Huffman table whose 16 code counts sum to 300: stb_image 2.27 writes
// past its 257-entry table on the heap (found by fuzz/image_fuzz; UBSan:
// index 257 out of bounds in stbi__build_huffman).
std::string jpeg_with_huffman_codes(int codes, bool after_frame) {
  std::string dht = "\xFF\xC4";
  const int length = 2 + 17 + codes;
  dht += std::string{char(length >> 8), char(length & 0xFF), '\x00'};  // DC table 0
  int left = codes;
  for (int i = 0; i < 16; ++i) {
    const int n = std::min(left, 255);
    dht += char(n);
    left -= n;
  }
  dht += std::string(static_cast<size_t>(codes), '\x01');
  const std::string frame = jpeg_header(8, 8).substr(2);  // SOF0 after SOI
  return after_frame ? "\xFF\xD8" + frame + dht : "\xFF\xD8" + dht + frame;
}

TEST(ImageIo, StbsReasonIsPrintableOnOneLine) {
  // stb copies an unknown PNG chunk's type bytes into its failure reason;
  // the fuzzer's file had a line break there. Here: a line break and an
  // ANSI escape, which a terminal would obey.
  auto be32 = [](uint32_t v) { return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; };
  std::string png = png_chunk_header(4, 4);
  png += be32(0) + std::string("\n\x1b[2", 4) + be32(0);
  const std::string message = decode_error(png);
  EXPECT_EQ(message, "mem.img: corrupt or truncated PNG data (??[2 PNG chunk not known)");
}

TEST(ImageIo, EmptyIdatChunksAreDroppedBeforeStbSeesThem) {
  // stb_image 2.27 did memcpy(NULL, src, 0) for a first IDAT of length 0
  // (UBSan, found by fuzz/image_fuzz). The image must decode as without it.
  TempDir tmp("idat");
  auto test = read_cifar_batch(testing::batches_dir() / "test_batch.bin").slice(0, 1);
  write_png(tmp / "a.png", test.images[0]);
  const std::string png = read_file(tmp / "a.png");
  const size_t idat = png.find("IDAT") - 4;
  const std::string empty_idat = std::string(4, '\0') + "IDAT" + std::string("\x35\xaf\x06\x1e", 4);
  const std::string with_empty = png.substr(0, idat) + empty_idat + png.substr(idat) ;
  EXPECT_TRUE(torch::equal(decode_image(with_empty, "empty_idat.png"), test.images[0]));
  // Dropped even when a chunk after it is broken (the fuzzer's file): stb
  // reads the empty one first.
  EXPECT_NE(decode_error(png.substr(0, idat) + empty_idat + std::string("\0\0\0\0\0\0\x00" "7(\0\0\0", 12))
                .find("corrupt or truncated PNG data"),
            std::string::npos);
  // Only empty ones: the same file with a junk chunk is still refused by stb.
  EXPECT_NE(decode_error(png.substr(0, idat) + std::string("\0\0\0\x01IDAT\x00", 9) + png.substr(idat))
                .find("corrupt or truncated PNG data"),
            std::string::npos);
}

TEST(ImageIo, APngChunkLongerThanTheFileIsRefusedBeforeStbAllocatesIt) {
  // stb_image 2.27 grows its IDAT buffer to the declared chunk length first:
  // 136 bytes made it allocate 2 GB (found by fuzz/image_fuzz).
  auto be32 = [](uint32_t v) { return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; };
  const std::string png = png_chunk_header(4, 4) + be32(0x80000000u) + "IDAT" + std::string(10, 'x');
  EXPECT_EQ(decode_error(png),
            "mem.img: corrupt or truncated PNG data (a chunk declares 2147483648 bytes; the file ends 10 bytes later)");
  // Whatever follows IEND is not read, so it is not judged either.
  TempDir tmp("iend");
  auto test = read_cifar_batch(testing::batches_dir() / "test_batch.bin").slice(0, 1);
  write_png(tmp / "a.png", test.images[0]);
  EXPECT_TRUE(torch::equal(decode_image(read_file(tmp / "a.png") + be32(0x80000000u) + "junk", "a.png"), test.images[0]));
}

TEST(ImageIo, TopDownBmpsWithANegativeHeightDecode) {
  // BITMAPINFOHEADER height -2: rows stored top row first. stbi_info
  // reports the height as stored, and predict once refused such files as
  // "image has no pixels".
  auto le32 = [](uint32_t v) { return std::string{char(v), char(v >> 8), char(v >> 16), char(v >> 24)}; };
  // 2x2, 24-bit, rows padded to 8 bytes, BGR: top row red, blue; bottom row green, white.
  std::string bmp = bmp_header(2, -2);
  bmp.replace(2, 4, le32(54 + 16));
  bmp += std::string("\x00\x00\xFF\xFF\x00\x00\x00\x00", 8) + std::string("\x00\xFF\x00\xFF\xFF\xFF\x00\x00", 8);
  const auto image = decode_image(bmp, "top_down.bmp");
  ASSERT_EQ(image.sizes(), (std::vector<int64_t>{3, 2, 2}));
  EXPECT_EQ(image[0][0][0].item<int>(), 255);  // red, top left
  EXPECT_EQ(image[2][0][1].item<int>(), 255);  // blue, top right
  EXPECT_EQ(image[1][1][0].item<int>(), 255);  // green, bottom left
  EXPECT_EQ(image[0][1][0].item<int>(), 0);
}

TEST(ImageIo, AJpegHuffmanTableOverflowingStbIsRefused) {
  for (bool after_frame : {false, true}) {
    EXPECT_EQ(decode_error(jpeg_with_huffman_codes(300, after_frame)),
              "mem.img: corrupt JPEG data (a Huffman table declares 300 codes; at most 256 exist)");
  }
  // The fuzzer's case: the segment's declared length runs past the end of
  // the file, and stb reads the table anyway.
  const std::string cut = jpeg_with_huffman_codes(300, true);
  EXPECT_EQ(decode_error(cut.substr(0, cut.size() - 200)),
            "mem.img: corrupt JPEG data (a Huffman table declares 300 codes; at most 256 exist)");
  // And behind junk, which stb skips to the next 0xFF (the fuzzer's 2nd case).
  std::string junk = jpeg_with_huffman_codes(300, true);
  junk.insert(21, "\x16\x17junk");  // after SOI and the 19-byte frame header
  EXPECT_EQ(decode_error(junk), "mem.img: corrupt JPEG data (a Huffman table declares 300 codes; at most 256 exist)");
  // 256 codes is legal as far as the count goes; stb refuses the rest.
  EXPECT_NE(decode_error(jpeg_with_huffman_codes(256, false)).find("mem.img: corrupt"), std::string::npos);
  // Real JPEGs pass the check.
  TempDir tmp("jpg");
  auto photo = torch::randint(0, 256, {48, 64, 3}, torch::kUInt8);
  ASSERT_TRUE(stbi_write_jpg((tmp / "p.jpg").c_str(), 64, 48, 3, photo.data_ptr<uint8_t>(), 90));
  EXPECT_EQ(decode_image(read_file(tmp / "p.jpg"), "p.jpg").sizes(), (std::vector<int64_t>{3, 48, 64}));
}

// A JPEG encoded by libjpeg itself, so the tests choose the colour space,
// the Adobe marker and progressive mode. `pixels`: H*W*components bytes.
std::string encode_jpeg(const std::vector<uint8_t>& pixels, int width, int height, int components,
                        J_COLOR_SPACE input, J_COLOR_SPACE stored, bool adobe_marker, bool progressive) {
  jpeg_compress_struct info{};
  jpeg_error_mgr errors{};
  info.err = jpeg_std_error(&errors);  // its error_exit ends the test process: fine for our own input
  jpeg_create_compress(&info);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&info, &buffer, &size);
  info.image_width = static_cast<JDIMENSION>(width);
  info.image_height = static_cast<JDIMENSION>(height);
  info.input_components = components;
  info.in_color_space = input;
  jpeg_set_defaults(&info);
  jpeg_set_colorspace(&info, stored);
  info.write_Adobe_marker = adobe_marker ? TRUE : FALSE;
  for (int c = 0; c < info.num_components; ++c) {
    info.comp_info[c].h_samp_factor = info.comp_info[c].v_samp_factor = 1;  // no chroma subsampling
  }
  jpeg_set_quality(&info, 100, TRUE);
  if (progressive) jpeg_simple_progression(&info);
  jpeg_start_compress(&info, TRUE);
  while (info.next_scanline < info.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(pixels.data()) + static_cast<size_t>(info.next_scanline) * width * components;
    jpeg_write_scanlines(&info, &row, 1);
  }
  jpeg_finish_compress(&info);
  jpeg_destroy_compress(&info);
  std::string bytes(reinterpret_cast<const char*>(buffer), size);
  std::free(buffer);
  return bytes;
}

// A real photo-like image: a CIFAR test image enlarged to 96x96, so the
// files are a few KB and a cut lands well inside the pixel data.
torch::Tensor photo() {
  auto test = read_cifar_batch(testing::batches_dir() / "test_batch.bin").slice(0, 1);
  return resize_image(test.images[0], 96, 96);
}

std::vector<uint8_t> hwc_bytes(const torch::Tensor& image) {
  auto hwc = image.permute({1, 2, 0}).contiguous();
  return {hwc.data_ptr<uint8_t>(), hwc.data_ptr<uint8_t>() + hwc.numel()};
}

// Mean and largest absolute difference of two uint8 images.
std::pair<double, int> difference(const torch::Tensor& a, const torch::Tensor& b) {
  auto d = (a.to(torch::kInt32) - b.to(torch::kInt32)).abs();
  return {d.to(torch::kFloat64).mean().item<double>(), d.max().item<int>()};
}

TEST(ImageIo, TruncatedJpegsAreRefusedNotFilledIn) {
  const auto image = photo();
  for (bool progressive : {false, true}) {
    const std::string jpeg = encode_jpeg(hwc_bytes(image), 96, 96, 3, JCS_RGB, JCS_YCbCr, false, progressive);
    const auto whole = decode_image(jpeg, "whole.jpg");
    ASSERT_LT(difference(whole, image).first, 2.0);
    // libjpeg "recovers" from these with a warning, filling the missing
    // part in grey: a warning must refuse the image, not classify the fill.
    for (size_t keep : {jpeg.size() / 3, jpeg.size() / 2, jpeg.size() * 9 / 10, jpeg.size() - 40, jpeg.size() - 3}) {
      const std::string what = decode_error(jpeg.substr(0, keep));
      EXPECT_EQ(what.rfind("mem.img: corrupt or truncated JPEG data (", 0), 0u)
          << what << " (progressive " << progressive << ", " << keep << " of " << jpeg.size() << " bytes)";
    }
    if (!progressive) {
      // One scan, without only its end marker: every pixel is there.
      EXPECT_TRUE(torch::equal(decode_image(jpeg.substr(0, jpeg.size() - 2), "no_eoi.jpg"), whole));
      continue;
    }
    // A progressive file cut where a scan begins reads as a complete file
    // with fewer scans (blurred): refused, and so, being the same bytes to
    // the decoder, is one that lacks only its end marker.
    int cuts = 0;
    const size_t first_scan = jpeg.find("\xFF\xDA");  // SOS; FF is stuffed as FF 00 inside scans
    for (size_t at = jpeg.find("\xFF\xDA", first_scan + 2); at != std::string::npos;
         at = jpeg.find("\xFF\xDA", at + 2)) {
      ++cuts;
      const std::string what = decode_error(jpeg.substr(0, at));
      EXPECT_EQ(what.rfind("mem.img: corrupt or truncated JPEG data (", 0), 0u) << what << " (cut at " << at << ")";
    }
    EXPECT_GT(cuts, 3);
    EXPECT_NE(decode_error(jpeg.substr(0, jpeg.size() - 2)), "(no error)");
  }
  // Stray bytes before the end marker (common in camera files) lose no
  // pixel: libjpeg warns "extraneous bytes", and the image is kept.
  const std::string jpeg = encode_jpeg(hwc_bytes(image), 96, 96, 3, JCS_RGB, JCS_YCbCr, false, false);
  const std::string padded = jpeg.substr(0, jpeg.size() - 2) + std::string("\x12\x34\x56", 3) + jpeg.substr(jpeg.size() - 2);
  EXPECT_TRUE(torch::equal(decode_image(padded, "padded.jpg"), decode_image(jpeg, "plain.jpg")));
}

TEST(ImageIo, TruncatedBmpsAreRefusedNotFilledWithBlack) {
  const auto image = photo();
  std::string bmp;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  const auto pixels = hwc_bytes(image);
  ASSERT_TRUE(stbi_write_bmp_to_func(append, &bmp, 96, 96, 3, pixels.data()));
  ASSERT_EQ(bmp.size(), 54u + 96 * 96 * 3);
  EXPECT_TRUE(torch::equal(decode_image(bmp, "whole.bmp"), image));
  // stb reads zeros past the end: these decoded with black rows.
  EXPECT_EQ(decode_error(bmp.substr(0, bmp.size() - 1)),
            "mem.img: corrupt or truncated BMP data (its header puts 27648 bytes of pixels at byte 54; the file ends "
            "at byte 27701)");
  EXPECT_NE(decode_error(bmp.substr(0, 1000)).find("corrupt or truncated BMP data"), std::string::npos);
  // Trailing bytes after the pixels are harmless, as before.
  EXPECT_TRUE(torch::equal(decode_image(bmp + "trailer", "trailer.bmp"), image));
}

// CMYK (print) JPEGs were refused as "corrupt": libjpeg cannot turn CMYK
// into RGB itself. Photoshop's convention, marked by an Adobe APP14
// segment, stores every value inverted (255 = no ink); without the marker
// the values are ink amounts.
TEST(ImageIo, CmykAndYcckJpegsDecodeToTheirRgbColours) {
  const auto image = photo();
  const auto rgb = hwc_bytes(image);
  std::vector<uint8_t> inverted, ink;
  for (size_t i = 0; i < rgb.size(); i += 3) {
    const int r = rgb[i], g = rgb[i + 1], b = rgb[i + 2];
    const int m = std::max({r, g, b, 1});
    // K = 1 - max(R,G,B), C = (1 - R - K) / (1 - K), ...; inverted: 1 - C = R / max.
    for (int v : {r, g, b}) inverted.push_back(static_cast<uint8_t>((v * 255 + m / 2) / m));
    inverted.push_back(static_cast<uint8_t>(m));
  }
  for (uint8_t v : inverted) ink.push_back(static_cast<uint8_t>(255 - v));
  struct Case {
    const char* name;
    const std::vector<uint8_t>& values;
    J_COLOR_SPACE stored;
    bool adobe;
  };
  for (const Case& c : {Case{"Adobe CMYK", inverted, JCS_CMYK, true}, Case{"Adobe YCCK", inverted, JCS_YCCK, true},
                        Case{"plain CMYK", ink, JCS_CMYK, false}}) {
    const std::string jpeg = encode_jpeg(c.values, 96, 96, 4, JCS_CMYK, c.stored, c.adobe, false);
    torch::Tensor decoded;
    try {
      decoded = decode_image(jpeg, "cmyk.jpg");
    } catch (const UserError& e) {
      ADD_FAILURE() << c.name << ": " << e.what();
      continue;
    }
    ASSERT_EQ(decoded.sizes(), image.sizes()) << c.name;
    const auto [mean, max] = difference(decoded, image);
    // Quality 100 without subsampling: within a few levels of the original
    // (an inverted reading would be off by ~200).
    EXPECT_LT(mean, 1.5) << c.name;
    EXPECT_LE(max, 12) << c.name;
  }
}

// An APP1 segment with an EXIF block holding only the orientation tag, in
// either byte order (cameras write both).
std::string exif_segment(int orientation, bool big_endian) {
  std::string tiff = big_endian ? "MM" : "II";
  auto put = [&](uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) {
      const int shift = big_endian ? 8 * (bytes - 1 - i) : 8 * i;
      tiff += static_cast<char>((v >> shift) & 0xFF);
    }
  };
  put(42, 2);
  put(8, 4);  // IFD0 right after this header
  put(1, 2);  // one entry: Orientation (0x0112), SHORT (3), one value, padded to 4 bytes
  put(0x0112, 2);
  put(3, 2);
  put(1, 4);
  put(static_cast<uint32_t>(orientation), 2);
  put(0, 2);
  put(0, 4);  // no further IFD
  const std::string body = std::string("Exif\0\0", 6) + tiff;
  const size_t length = body.size() + 2;
  return std::string("\xFF\xE1", 2) + static_cast<char>(length >> 8) + static_cast<char>(length & 0xFF) + body;
}

// After the JFIF APP0 segment libjpeg writes first, where cameras put EXIF.
std::string with_segment(const std::string& jpeg, const std::string& segment) {
  const size_t app0_end = 4 + (static_cast<uint8_t>(jpeg[4]) << 8 | static_cast<uint8_t>(jpeg[5]));
  return jpeg.substr(0, app0_end) + segment + jpeg.substr(app0_end);
}

// Phone photos are stored as the sensor read them, with an EXIF tag saying
// how to turn them upright; predict classified them sideways. A wide image
// (96x48) so a quarter turn shows in the shape.
TEST(ImageIo, ExifOrientationTurnsJpegsUpright) {
  auto test = read_cifar_batch(testing::batches_dir() / "test_batch.bin").slice(0, 1);
  const auto wide = resize_image(test.images[0], 48, 96);
  const std::string jpeg = encode_jpeg(hwc_bytes(wide), 96, 48, 3, JCS_RGB, JCS_YCbCr, false, false);
  const auto stored = decode_image(jpeg, "stored.jpg");
  ASSERT_EQ(stored.sizes(), (std::vector<int64_t>{3, 48, 96}));
  const auto clockwise = torch::rot90(stored, -1, {1, 2});
  // What a viewer shows for each tag (TIFF 6.0 / EXIF 2.3).
  const std::vector<torch::Tensor> upright = {stored,
                                              stored.flip({2}),
                                              torch::rot90(stored, 2, {1, 2}),
                                              stored.flip({1}),
                                              stored.transpose(1, 2),
                                              clockwise,
                                              clockwise.flip({1}),
                                              torch::rot90(stored, 1, {1, 2})};
  for (bool big_endian : {false, true}) {
    for (int tag = 1; tag <= 8; ++tag) {
      const auto decoded = decode_image(with_segment(jpeg, exif_segment(tag, big_endian)), "photo.jpg");
      EXPECT_TRUE(torch::equal(decoded, upright[tag - 1].contiguous()))
          << "orientation " << tag << (big_endian ? " (big-endian)" : "") << ": " << decoded.sizes();
    }
  }
  // Orientation 6 (camera turned a quarter anticlockwise): the stored
  // top-left pixel ends up top-right.
  const auto six = decode_image(with_segment(jpeg, exif_segment(6, false)), "six.jpg");
  EXPECT_TRUE(torch::equal(six.index({torch::indexing::Slice(), 0, 47}), stored.index({torch::indexing::Slice(), 0, 0})));
  // An out-of-range tag, a cut EXIF block or an XMP APP1 leave the pixels
  // as stored, without an error.
  const std::string bad_tag = exif_segment(9, false);
  std::string cut = exif_segment(6, true).substr(0, 14);
  cut[3] = static_cast<char>(cut.size() - 2);
  const std::string xmp = std::string("\xFF\xE1\x00\x22http://ns.adobe.com/xap/1.0/\0abc", 36);
  for (const std::string& segment : {bad_tag, cut, xmp}) {
    EXPECT_TRUE(torch::equal(decode_image(with_segment(jpeg, segment), "odd.jpg"), stored));
  }
}

}  // namespace
}  // namespace cifar
