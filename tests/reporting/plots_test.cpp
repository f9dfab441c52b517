// Plots and the HTML report, checked on the files a user gets: real PNGs
// decoded with stb_image, scripts re-run with the real gnuplot, the report
// parsed back.
#include "reporting/plots.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <stb/stb_image.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iomanip>
#include <random>
#include <set>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "reporting/gnuplot.h"
#include "reporting/html_report.h"
#include "test_util.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using testing::TempDir;

const std::vector<std::string> kClasses = {"airplane", "automobile", "bird",  "cat",  "deer",
                                           "dog",      "frog",       "horse", "ship", "truck"};

struct Png {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

Png decode_png(const fs::path& path) {
  Png png;
  int channels = 0;
  unsigned char* data = stbi_load(path.c_str(), &png.width, &png.height, &channels, 3);
  if (!data) {
    ADD_FAILURE() << path << " is not a decodable PNG: " << stbi_failure_reason();
    return png;
  }
  png.rgb.assign(data, data + static_cast<size_t>(png.width) * png.height * 3);
  stbi_image_free(data);
  return png;
}

size_t distinct_colours(const Png& png) {
  std::set<uint32_t> colours;
  for (size_t i = 0; i + 2 < png.rgb.size(); i += 3) {
    colours.insert(png.rgb[i] << 16 | png.rgb[i + 1] << 8 | png.rgb[i + 2]);
  }
  return colours.size();
}

// Pixels within `tol` of an RGB colour.
size_t pixels_near(const Png& png, int r, int g, int b, int tol = 12) {
  size_t n = 0;
  for (size_t i = 0; i + 2 < png.rgb.size(); i += 3) {
    n += std::abs(png.rgb[i] - r) <= tol && std::abs(png.rgb[i + 1] - g) <= tol &&
         std::abs(png.rgb[i + 2] - b) <= tol;
  }
  return n;
}

struct Rgb {
  int r, g, b;
};
// The colour-blind-safe pair the plots use, and the pair they used before
// (green against red, which 1 man in 12 cannot tell apart).
constexpr Rgb kBlue{0x1f, 0x77, 0xb4}, kVermillion{0xd5, 0x5e, 0x00}, kOldRed{0xd6, 0x27, 0x28},
    kOldGreen{0x2c, 0xa0, 0x2c};

bool near(const Png& png, int x, int y, Rgb c, int tol) {
  const uint8_t* p = &png.rgb[(static_cast<size_t>(y) * png.width + x) * 3];
  return std::abs(p[0] - c.r) <= tol && std::abs(p[1] - c.g) <= tol && std::abs(p[2] - c.b) <= tol;
}

size_t pixels_near(const Png& png, Rgb c, int tol = 12) { return pixels_near(png, c.r, c.g, c.b, tol); }

// Pixels of colour `c` in the box [x0, x1) x [y0, y1).
size_t pixels_in(const Png& png, int x0, int y0, int x1, int y1, Rgb c, int tol) {
  size_t n = 0;
  for (int y = std::max(0, y0); y < std::min(png.height, y1); ++y) {
    for (int x = std::max(0, x0); x < std::min(png.width, x1); ++x) n += near(png, x, y, c, tol);
  }
  return n;
}

// Separate blobs of colour `c` (8-connected) of at least `min_size` pixels.
size_t blobs(const Png& png, Rgb c, int tol, size_t min_size) {
  std::vector<uint8_t> seen(static_cast<size_t>(png.width) * png.height, 0);
  size_t count = 0;
  for (int y0 = 0; y0 < png.height; ++y0) {
    for (int x0 = 0; x0 < png.width; ++x0) {
      if (seen[static_cast<size_t>(y0) * png.width + x0] || !near(png, x0, y0, c, tol)) continue;
      size_t size = 0;
      std::vector<std::pair<int, int>> stack{{x0, y0}};
      seen[static_cast<size_t>(y0) * png.width + x0] = 1;
      while (!stack.empty()) {
        const auto [x, y] = stack.back();
        stack.pop_back();
        ++size;
        for (int dy = -1; dy <= 1; ++dy) {
          for (int dx = -1; dx <= 1; ++dx) {
            const int nx = x + dx, ny = y + dy;
            if (nx < 0 || ny < 0 || nx >= png.width || ny >= png.height) continue;
            uint8_t& s = seen[static_cast<size_t>(ny) * png.width + nx];
            if (!s && near(png, nx, ny, c, tol)) {
              s = 1;
              stack.emplace_back(nx, ny);
            }
          }
        }
      }
      count += size >= min_size;
    }
  }
  return count;
}

// Runs of colour `c` along row y (a gap of more than 2 px ends a run), and
// the row of the image where `c` is most frequent.
size_t runs_in_row(const Png& png, int y, Rgb c, int tol) {
  size_t runs = 0;
  int gap = 3;
  for (int x = 0; x < png.width; ++x) {
    if (near(png, x, y, c, tol)) {
      if (gap > 2) ++runs;
      gap = 0;
    } else {
      ++gap;
    }
  }
  return runs;
}
int fullest_row(const Png& png, Rgb c, int tol) {
  int best = 0;
  size_t most = 0;
  for (int y = 0; y < png.height; ++y) {
    const size_t n = pixels_in(png, 0, y, png.width, y + 1, c, tol);
    if (n > most) most = n, best = y;
  }
  return best;
}

// A valid PNG of the documented size with real content: a blank or
// single-colour canvas has a handful of colours and almost no ink.
void expect_rendered(const fs::path& dir, const PlotSize& size) {
  const fs::path png_path = dir / (std::string(size.name) + ".png");
  ASSERT_TRUE(fs::exists(png_path)) << png_path;
  const Png png = decode_png(png_path);
  EXPECT_EQ(png.width, size.width) << size.name;
  EXPECT_EQ(png.height, size.height) << size.name;
  EXPECT_GT(distinct_colours(png), 50u) << size.name;
  const size_t pixels = static_cast<size_t>(png.width) * png.height;
  const size_t ink = pixels - pixels_near(png, 255, 255, 255, 0);
  EXPECT_GT(ink, pixels / 50) << size.name << " is nearly blank";
  EXPECT_TRUE(fs::exists(dir / (std::string(size.name) + ".gp"))) << size.name;
}

void expect_no_temporaries(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    EXPECT_NE(e.path().filename().string().front(), '.') << "left behind: " << e.path();
  }
}

std::vector<Logs> make_history(int epochs) {
  std::vector<Logs> h;
  for (int e = 0; e < epochs; ++e) {
    const double t = static_cast<double>(e) / epochs;
    h.push_back({{"loss", 2.0 * std::exp(-3 * t) + 0.1},
                 {"val_loss", 2.1 * std::exp(-2.5 * t) + 0.3 + 0.02 * (e % 3)},
                 {"accuracy", 0.3 + 0.65 * (1 - std::exp(-4 * t))},
                 {"val_accuracy", 0.28 + 0.6 * (1 - std::exp(-3 * t))},
                 {"learning_rate", e < epochs / 2 ? 0.1 : 0.01}});
  }
  return h;
}

std::vector<std::vector<int64_t>> make_confusion() {
  std::mt19937 rng(7);
  std::vector<std::vector<int64_t>> counts(10, std::vector<int64_t>(10));
  for (int i = 0; i < 10; ++i) {
    for (int j = 0; j < 10; ++j) counts[i][j] = i == j ? 750 + 20 * i : rng() % 40;
  }
  return counts;
}

struct Samples {
  torch::Tensor images;
  std::vector<int64_t> truth, predicted;
  std::vector<double> confidence;
};

Samples make_samples(int64_t n, bool all_correct) {
  torch::manual_seed(3);
  Samples s;
  // Smooth gradients plus noise: varied, recognisable tiles.
  auto ramp = torch::arange(32, torch::kFloat32) * 8;
  auto base = (ramp.view({1, 1, 32, 1}) + ramp.view({1, 1, 1, 32})) / 2;
  s.images = (base.expand({n, 3, 32, 32}) + torch::randint(0, 60, {n, 3, 32, 32}))
                 .clamp(0, 255)
                 .to(torch::kUInt8);
  for (int64_t i = 0; i < n; ++i) {
    s.truth.push_back(i % 10);
    s.predicted.push_back(all_correct || i % 4 ? i % 10 : (i + 3) % 10);
    s.confidence.push_back(0.4 + 0.6 * static_cast<double>(i) / static_cast<double>(n));
  }
  return s;
}

std::vector<double> make_confidences(size_t n, double skew, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<double> v;
  for (size_t i = 0; i < n; ++i) v.push_back(1 - std::pow(u(rng), skew) * 0.9);
  return v;
}

std::vector<ReliabilityBin> make_bins() {
  std::vector<ReliabilityBin> bins;
  for (int b = 0; b < 10; ++b) {
    const double lo = b / 10.0, hi = (b + 1) / 10.0;
    bins.push_back({lo, hi, b < 2 ? 0 : 50 * b * b, (lo + hi) / 2 - 0.05, (lo + hi) / 2});
  }
  return bins;
}

void make_all_plots(const fs::path& dir) {
  plot_training_history(make_history(30), dir);
  plot_confusion_matrix(make_confusion(), kClasses, dir);
  plot_class_accuracy({0.91, 0.95, 0.82, 0.7, 0.88, 0.79, 0.93, 0.92, 0.95, 0.94}, kClasses, dir);
  const Samples s = make_samples(16, false);
  plot_prediction_samples(s.images, s.truth, s.predicted, s.confidence, kClasses, dir);
  plot_confidence_distribution(make_confidences(900, 3, 1), make_confidences(100, 0.7, 2), dir);
  plot_reliability_diagram(make_bins(), 0.0312, dir);
}

// `cd dir && gnuplot script`, as a user would; no shell, so the space in the
// folder name needs no quoting.
int run_gnuplot_in(const fs::path& dir, const std::string& script) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    if (::chdir(dir.c_str()) != 0) ::_exit(126);
    ::execlp("gnuplot", "gnuplot", script.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Sets PATH for one scope (the "gnuplot missing" case), then restores it.
class ScopedPath {
 public:
  explicit ScopedPath(const std::string& value) {
    const char* old = std::getenv("PATH");
    had_ = old != nullptr;
    if (old) old_ = old;
    ::setenv("PATH", value.c_str(), 1);
  }
  ~ScopedPath() {
    if (had_) ::setenv("PATH", old_.c_str(), 1);
    else ::unsetenv("PATH");
  }

 private:
  bool had_ = false;
  std::string old_;
};

TEST(Plots, TrainingHistoryHasThreePanelsWithDataAndScript) {
  TempDir tmp("plots");
  const fs::path dir = tmp / "results dir";
  plot_training_history(make_history(30), dir);
  expect_rendered(dir, kTrainingHistoryPlot);
  const std::string dat = read_file(dir / "training_history.dat");
  EXPECT_NE(dat.find("# epoch loss val_loss accuracy val_accuracy lr"), std::string::npos);
  EXPECT_EQ(std::count(dat.begin(), dat.end(), '\n'), 2 + 30);
  EXPECT_EQ(dat.find("\n0 "), std::string::npos) << "epochs must be 1-based";
  EXPECT_NE(dat.find("\n30 "), std::string::npos);
  const std::string gp = read_file(dir / "training_history.gp");
  EXPECT_NE(gp.find("set logscale y"), std::string::npos);
  EXPECT_NE(gp.find("'validation'"), std::string::npos);
  expect_no_temporaries(dir);
}

TEST(Plots, TrainingHistorySkipsMissingKeysAndSaysSo) {
  TempDir tmp("plots");
  // Only training loss and accuracy: no validation split, no lr logged; a
  // single epoch must still render (degenerate x range).
  plot_training_history({{{"loss", 1.5}, {"accuracy", 0.4}}}, tmp.path());
  expect_rendered(tmp.path(), kTrainingHistoryPlot);
  const std::string gp = read_file(tmp / "training_history.gp");
  EXPECT_NE(gp.find("no learning rate recorded"), std::string::npos);
  EXPECT_EQ(gp.find("'validation'"), std::string::npos);
  EXPECT_NE(read_file(tmp / "training_history.dat").find("1 1.5 ? 0.4 ? ?"), std::string::npos);
}

// A 1-epoch run puts its points at the panel's centre, the train loss at
// the top and the train accuracy at the bottom: the keys, once inside the
// panels, hid both. Each train point must show beside its key's sample.
TEST(Plots, TrainingHistoryKeysHideNoPointOfAOneEpochRun) {
  TempDir tmp("plots");
  plot_training_history({{{"loss", 2.2472}, {"val_loss", 2.1998}, {"accuracy", 0.1810}, {"val_accuracy", 0.2478},
                          {"learning_rate", 0.0668}}},
                        tmp.path());
  const Png png = decode_png(tmp / "training_history.png");
  // Loss and accuracy panels: a train point and a key sample each.
  EXPECT_GE(blobs(png, kBlue, 40, 12), 4u);
  EXPECT_GE(blobs(png, Rgb{0xff, 0x7f, 0x0e}, 40, 12), 4u);
}

TEST(Plots, TrainingHistoryRejectsAnEmptyHistory) {
  TempDir tmp("plots");
  EXPECT_THROW(plot_training_history({}, tmp.path()), UserError);
  EXPECT_FALSE(fs::exists(tmp / "training_history.png"));
}

TEST(Plots, ConfusionMatrixWritesCountsAndClassNames) {
  TempDir tmp("plots");
  const auto counts = make_confusion();
  plot_confusion_matrix(counts, kClasses, tmp.path());
  expect_rendered(tmp.path(), kConfusionMatrixPlot);
  const std::string dat = read_file(tmp / "confusion_matrix.dat");
  // Cell (true 3, predicted 3) with its row-normalised fraction and count.
  int64_t row = 0;
  for (auto c : counts[3]) row += c;
  std::ostringstream cell;
  cell << "\n3 3 " << std::setprecision(10) << static_cast<double>(counts[3][3]) / row << " "
       << counts[3][3] << "\n";
  EXPECT_NE(dat.find(cell.str()), std::string::npos) << cell.str();
  const std::string gp = read_file(tmp / "confusion_matrix.gp");
  for (const auto& name : kClasses) EXPECT_NE(gp.find("'" + name + "'"), std::string::npos) << name;
  EXPECT_NE(gp.find("'Predicted'"), std::string::npos);
  EXPECT_NE(gp.find("'True'"), std::string::npos);
  // The dark diagonal cells: the palette's top end (#08306b) shows.
  EXPECT_GT(pixels_near(decode_png(tmp / "confusion_matrix.png"), 0x08, 0x30, 0x6b, 30), 1000u);
}

// The dashed mean line must never run through a bar's value label. Bars of
// 47% put their labels (3 above the bar) right on a 50% mean: those go
// inside their bars, where the line, behind the bars, is hidden.
TEST(Plots, ClassAccuracyMeanLineNeverCrossesALabel) {
  TempDir tmp("plots");
  plot_class_accuracy({0.47, 0.53, 0.47, 0.53, 0.47, 0.53, 0.47, 0.53, 0.47, 0.53}, kClasses, tmp.path());
  const Png png = decode_png(tmp / "class_accuracy.png");
  const Rgb bar{0x41, 0x8b, 0xbf};  // #1f77b4 at fill density 0.85 on white
  // The bars' columns: runs of bar colour along the row where they all are.
  const int row = fullest_row(png, bar, 12);
  std::vector<std::pair<int, int>> columns;
  for (int x = 0; x < png.width; ++x) {
    if (!near(png, x, row, bar, 12)) continue;
    if (columns.empty() || x > columns.back().second + 1) columns.emplace_back(x, x);
    columns.back().second = x;
  }
  ASSERT_EQ(columns.size(), 10u);
  size_t crossings = 0, dark_text = 0, line = 0;
  for (const auto& [x0, x1] : columns) {
    // Inside the column (its black outline left out), every orange pixel of
    // the mean line and every dark pixel of a label's text.
    for (int y = 0; y < png.height; ++y) {
      for (int x = x0 + 3; x <= x1 - 3; ++x) {
        const uint8_t* p = &png.rgb[(static_cast<size_t>(y) * png.width + x) * 3];
        const bool dark = p[0] < 100 && p[1] < 100 && p[2] < 100;
        dark_text += dark;
        if (!near(png, x, y, kVermillion, 60)) continue;
        ++line;
        for (int dy = -2; dy <= 2; ++dy) {
          for (int dx = -2; dx <= 2; ++dx) {
            const int nx = x + dx, ny = y + dy;
            if (nx < 0 || ny < 0 || nx >= png.width || ny >= png.height) continue;
            const uint8_t* q = &png.rgb[(static_cast<size_t>(ny) * png.width + nx) * 3];
            crossings += q[0] < 100 && q[1] < 100 && q[2] < 100;
          }
        }
      }
    }
  }
  EXPECT_GT(line, 50u) << "the mean line shows above the short bars";
  EXPECT_GT(dark_text, 200u) << "the labels above the tall bars are drawn";
  EXPECT_EQ(crossings, 0u) << "the mean line touches a label's text";
  // The moved labels are white, inside their bars.
  const std::string dat = read_file(tmp / "class_accuracy.dat");
  EXPECT_NE(dat.find("\n0 47 43.5 16777215\n"), std::string::npos) << dat;
  EXPECT_NE(dat.find("\n1 53 56 0\n"), std::string::npos) << dat;
}

TEST(Plots, ClassAccuracyDrawsBarsAndShowsMissingClassesAsNa) {
  TempDir tmp("plots");
  std::vector<double> acc = {0.91, 0.95, 0.82, 0.7, NAN, 0.79, 0.93, 0.92, 0.95, 0.94};
  plot_class_accuracy(acc, kClasses, tmp.path());
  expect_rendered(tmp.path(), kClassAccuracyPlot);
  EXPECT_NE(read_file(tmp / "class_accuracy.dat").find("\n4 ? ? 0\n"), std::string::npos);
  EXPECT_NE(read_file(tmp / "class_accuracy.gp").find("'n/a'"), std::string::npos);
  // Bars are filled with #1f77b4.
  EXPECT_GT(pixels_near(decode_png(tmp / "class_accuracy.png"), 0x1f, 0x77, 0xb4, 40), 10000u);
}

// Right and wrong told apart by a colour-blind-safe pair (blue, orange),
// never green against red, and by a second cue: a thin solid frame against
// a thick dashed one.
TEST(Plots, PredictionSamplesMarkRightAndWrongByColourAndFrameStyle) {
  TempDir tmp("plots");
  const Samples mixed = make_samples(16, false);
  plot_prediction_samples(mixed.images, mixed.truth, mixed.predicted, mixed.confidence, kClasses,
                          tmp / "mixed");
  expect_rendered(tmp / "mixed", kPredictionSamplesPlot);
  EXPECT_EQ(fs::file_size(tmp / "mixed" / "prediction_samples.rgb"), 16u * 32 * 32 * 3);
  const Png png = decode_png(tmp / "mixed" / "prediction_samples.png");
  EXPECT_EQ(pixels_near(png, kOldRed, 30), 0u);
  EXPECT_EQ(pixels_near(png, kOldGreen, 30), 0u);
  // Four wrong tiles framed in orange, twelve right ones in blue.
  EXPECT_GT(pixels_near(png, kVermillion, 20), 2000u);
  EXPECT_GT(pixels_near(png, kBlue, 20), 4000u);
  EXPECT_NE(read_file(tmp / "mixed" / "prediction_samples.gp").find("12 of 16 correct"), std::string::npos);

  const Samples right = make_samples(16, true);
  plot_prediction_samples(right.images, right.truth, right.predicted, right.confidence, kClasses,
                          tmp / "right");
  expect_rendered(tmp / "right", kPredictionSamplesPlot);
  EXPECT_LT(pixels_near(decode_png(tmp / "right" / "prediction_samples.png"), kVermillion, 20), 50u);

  // One tile each, filling the canvas: along the frame's top edge a wrong
  // tile's orange breaks into dashes, a right tile's blue is one line.
  const Samples one = make_samples(1, true);
  plot_prediction_samples(one.images, one.truth, {(one.truth[0] + 1) % 10}, one.confidence, kClasses, tmp / "wrong1");
  plot_prediction_samples(one.images, one.truth, one.truth, one.confidence, kClasses, tmp / "right1");
  const Png wrong1 = decode_png(tmp / "wrong1" / "prediction_samples.png");
  const Png right1 = decode_png(tmp / "right1" / "prediction_samples.png");
  EXPECT_GE(runs_in_row(wrong1, fullest_row(wrong1, kVermillion, 20), kVermillion, 20), 4u);
  EXPECT_LE(runs_in_row(right1, fullest_row(right1, kBlue, 20), kBlue, 20), 2u);
}

TEST(Plots, PredictionSamplesKeepImageOrientationAndChannels) {
  TempDir tmp("plots");
  // Top half pure red, bottom half pure blue: a flipped image puts blue on
  // top, a BGR mix-up swaps the colours.
  auto image = torch::zeros({1, 3, 32, 32}, torch::kUInt8);
  image.index_put_({0, 0, torch::indexing::Slice(0, 16)}, 255);
  image.index_put_({0, 2, torch::indexing::Slice(16, 32)}, 255);
  plot_prediction_samples(image, {3}, {3}, {0.9}, kClasses, tmp.path());
  const Png png = decode_png(tmp / "prediction_samples.png");
  double red_y = 0, blue_y = 0;
  size_t red = 0, blue = 0;
  for (int y = 0; y < png.height; ++y) {
    for (int x = 0; x < png.width; ++x) {
      const uint8_t* p = &png.rgb[(static_cast<size_t>(y) * png.width + x) * 3];
      if (p[0] == 255 && p[1] == 0 && p[2] == 0) red_y += y, ++red;
      if (p[0] == 0 && p[1] == 0 && p[2] == 255) blue_y += y, ++blue;
    }
  }
  // One tile fills most of the canvas: each half is well over 10^5 pixels.
  ASSERT_GT(red, 100000u);
  ASSERT_GT(blue, 100000u);
  EXPECT_LT(red_y / red, blue_y / blue) << "red half must be on top";
}

TEST(Plots, PredictionSamplesShowAtMostTwentyFive) {
  TempDir tmp("plots");
  const Samples s = make_samples(40, false);
  plot_prediction_samples(s.images, s.truth, s.predicted, s.confidence, kClasses, tmp.path());
  expect_rendered(tmp.path(), kPredictionSamplesPlot);
  EXPECT_EQ(fs::file_size(tmp / "prediction_samples.rgb"), 25u * 32 * 32 * 3);
}

TEST(Plots, ConfidenceDistributionBinsBothGroups) {
  TempDir tmp("plots");
  const auto right = make_confidences(900, 3, 1), wrong = make_confidences(100, 0.7, 2);
  plot_confidence_distribution(right, wrong, tmp.path());
  expect_rendered(tmp.path(), kConfidenceDistributionPlot);
  std::istringstream dat(read_file(tmp / "confidence_distribution.dat"));
  std::string line;
  int64_t right_total = 0, wrong_total = 0, rows = 0;
  while (std::getline(dat, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream row(line);
    double lo, hi;
    int64_t r, w;
    row >> lo >> hi >> r >> w;
    right_total += r, wrong_total += w, ++rows;
  }
  EXPECT_EQ(rows, 20);
  EXPECT_EQ(right_total, 900);
  EXPECT_EQ(wrong_total, 100);
  // Blue (solid) against orange (hatched), not green against red.
  const Png png = decode_png(tmp / "confidence_distribution.png");
  EXPECT_EQ(pixels_near(png, kOldRed, 30), 0u);
  EXPECT_EQ(pixels_near(png, kOldGreen, 30), 0u);
  EXPECT_GT(pixels_near(png, kVermillion, 20), 300u);
  EXPECT_NE(read_file(tmp / "confidence_distribution.gp").find("pattern"), std::string::npos);
  // One empty group still plots (legend says n=0).
  plot_confidence_distribution(right, {}, tmp / "only_right");
  expect_rendered(tmp / "only_right", kConfidenceDistributionPlot);
}

// The key's swatch for the gap must be the colour the gap is drawn in: a
// translucent red made a pink swatch and purple gaps over the blue bars.
// Underconfident bins (as label smoothing gives) put every gap inside its
// bar; bins below 0.5 are empty, so the top-left key has no bar behind it.
TEST(Plots, ReliabilityDiagramKeyShowsTheGapsColour) {
  TempDir tmp("plots");
  std::vector<ReliabilityBin> bins;
  for (int b = 0; b < 10; ++b) {
    const double lo = b / 10.0, hi = (b + 1) / 10.0;
    bins.push_back({lo, hi, b < 5 ? 0 : 100, 0.97, lo + 0.05});
  }
  plot_reliability_diagram(bins, 0.2, tmp.path());
  const Png png = decode_png(tmp / "reliability_diagram.png");
  // Top panel: x from 0.12 to 0.95 of 900 px, y from 0.08 to 0.64 of 1000
  // (the script's screen margins); confidence c is at x = 108 + 747 c.
  auto x_at = [](double c) { return static_cast<int>(108 + 747 * c); };
  auto y_at = [](double v) { return static_cast<int>(80 + 560 * (1 - v)); };
  const size_t in_key = pixels_in(png, x_at(0), y_at(1), x_at(0.45), y_at(0.75), kVermillion, 40);
  // Bin 0.7-0.8: mean confidence 0.75, accuracy 0.97; its gap, outline
  // included, lies in this box (the hatch's thin lines blend with the bar
  // below them, as the swatch's with the white key: the outline is the
  // colour itself).
  const int x0 = x_at(0.69), x1 = x_at(0.81), y0 = y_at(0.99), y1 = y_at(0.73);
  EXPECT_GT(in_key, 20u) << "the key's gap swatch is not the gap's colour";
  EXPECT_GT(pixels_in(png, x0, y0, x1, y1, kVermillion, 40), 100u) << "the gap is not drawn in its colour";
  // What a translucent red over the blue bar made: purple.
  EXPECT_EQ(pixels_in(png, x0, y0, x1, y1, Rgb{124, 109, 141}, 12), 0u) << "a purple gap";
}

TEST(Plots, ReliabilityDiagramPutsEceInTitle) {
  TempDir tmp("plots");
  plot_reliability_diagram(make_bins(), 0.0312, tmp.path());
  expect_rendered(tmp.path(), kReliabilityDiagramPlot);
  EXPECT_NE(read_file(tmp / "reliability_diagram.gp").find("Reliability diagram: ECE 0.0312, "), std::string::npos);
  // Calibrated: both figures, in a title short enough for the canvas.
  plot_reliability_diagram(make_bins(), 0.0103, tmp.path(), 0.1947);
  const std::string script = read_file(tmp / "reliability_diagram.gp");
  const size_t at = script.find("set multiplot title ");
  ASSERT_NE(at, std::string::npos) << script;
  const std::string title = script.substr(at, script.find(" font", at) - at);
  EXPECT_NE(title.find("ECE 0.0103 (0.1947 before temperature scaling)"), std::string::npos) << title;
  EXPECT_LE(title.size(), std::string("set multiplot title ''").size() + 75) << title;
  // Empty bins are missing values, not zero-accuracy bars.
  EXPECT_NE(read_file(tmp / "reliability_diagram.dat").find("\n0 0.1 0 ? ?\n"), std::string::npos);
}

TEST(Plots, ScriptsRedrawTheSamePngFromTheirFolder) {
  TempDir tmp("plots");
  const fs::path dir = tmp / "results dir";  // a space, as users' paths have
  make_all_plots(dir);
  for (const auto& size : kPlotSizes) {
    const std::string stem = size.name;
    const fs::path png = dir / (stem + ".png");
    const Png before = decode_png(png);
    // Each script reads its data from beside it.
    const fs::path data = dir / (stem + (stem == "prediction_samples" ? ".rgb" : ".dat"));
    EXPECT_TRUE(fs::exists(data)) << data;
    fs::remove(png);
    ASSERT_EQ(run_gnuplot_in(dir, stem + ".gp"), 0) << stem;
    ASSERT_TRUE(fs::exists(png)) << stem;
    const Png after = decode_png(png);
    EXPECT_EQ(after.width, size.width) << stem;
    EXPECT_EQ(after.height, size.height) << stem;
    EXPECT_TRUE(after.rgb == before.rgb) << stem << " redrawn differently";
  }
  expect_no_temporaries(dir);
}

TEST(Plots, MismatchedOrInvalidInputsAreUserErrors) {
  TempDir tmp("plots");
  const fs::path d = tmp.path();
  auto nine = kClasses;
  nine.pop_back();
  EXPECT_THROW(plot_confusion_matrix(make_confusion(), nine, d), UserError);
  auto ragged = make_confusion();
  ragged[4].pop_back();
  EXPECT_THROW(plot_confusion_matrix(ragged, kClasses, d), UserError);
  auto negative = make_confusion();
  negative[1][2] = -1;
  EXPECT_THROW(plot_confusion_matrix(negative, kClasses, d), UserError);
  EXPECT_THROW(plot_confusion_matrix({}, {}, d), UserError);

  EXPECT_THROW(plot_class_accuracy({0.5, 0.6}, kClasses, d), UserError);
  EXPECT_THROW(plot_class_accuracy(std::vector<double>(10, 91.0), kClasses, d), UserError)
      << "percentages must be rejected";

  const Samples s = make_samples(8, false);
  auto short_truth = s.truth;
  short_truth.pop_back();
  EXPECT_THROW(plot_prediction_samples(s.images, short_truth, s.predicted, s.confidence, kClasses, d),
               UserError);
  auto short_conf = s.confidence;
  short_conf.pop_back();
  EXPECT_THROW(plot_prediction_samples(s.images, s.truth, s.predicted, short_conf, kClasses, d),
               UserError);
  auto bad_label = s.predicted;
  bad_label[2] = 10;
  EXPECT_THROW(plot_prediction_samples(s.images, s.truth, bad_label, s.confidence, kClasses, d),
               UserError);
  EXPECT_THROW(plot_prediction_samples(s.images.to(torch::kFloat32), s.truth, s.predicted,
                                       s.confidence, kClasses, d),
               UserError);
  EXPECT_THROW(plot_prediction_samples(s.images[0], s.truth, s.predicted, s.confidence, kClasses, d),
               UserError);

  EXPECT_THROW(plot_confidence_distribution({}, {}, d), UserError);
  EXPECT_THROW(plot_confidence_distribution({0.5, 1.5}, {}, d), UserError);
  EXPECT_THROW(plot_confidence_distribution({0.5}, {NAN}, d), UserError);

  auto bins = make_bins();
  EXPECT_THROW(plot_reliability_diagram({}, 0.01, d), UserError);
  EXPECT_THROW(plot_reliability_diagram(bins, NAN, d), UserError);
  bins[5].hi = bins[5].lo;
  EXPECT_THROW(plot_reliability_diagram(bins, 0.01, d), UserError);
  // Validation comes before any file is written.
  EXPECT_TRUE(fs::is_empty(d));
}

TEST(Plots, MissingGnuplotIsOneClearError) {
  TempDir tmp("plots");
  ScopedPath path((tmp / "empty-bin").string());
  try {
    plot_class_accuracy(std::vector<double>(10, 0.9), kClasses, tmp / "out");
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), kGnuplotMissing);
  }
  EXPECT_FALSE(fs::exists(tmp / "out" / "class_accuracy.png"));
}

TEST(Gnuplot, FailureKeepsThePreviousPngAndReportsStderr) {
  TempDir tmp("plots");
  testing::write_bytes(tmp / "x.png", "previous");
  write_file_atomic(tmp / "x.gp", std::string("set terminal pngcairo\nset output outfile\n"
                                              "plot no_such_function(x)\n"));
  try {
    render_gnuplot(tmp / "x.gp", tmp / "x.png");
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_function"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(tmp / "x.png"), "previous");
  expect_no_temporaries(tmp.path());
}

TEST(Gnuplot, HungScriptIsStoppedAtTheTimeout) {
  TempDir tmp("plots");
  write_file_atomic(tmp / "slow.gp", std::string("pause 30\n"));
  const auto start = std::chrono::steady_clock::now();
  try {
    render_gnuplot(tmp / "slow.gp", tmp / "slow.png", std::chrono::milliseconds(300));
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("ran past"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_FALSE(fs::exists(tmp / "slow.png"));
  expect_no_temporaries(tmp.path());
}

TEST(Gnuplot, QuotesStringsSoNamesCannotBreakTheScript) {
  EXPECT_EQ(gp_quote("cat"), "'cat'");
  EXPECT_EQ(gp_quote("it's"), "'it''s'");
  EXPECT_EQ(gp_quote("a\nplot 1"), "'a plot 1'");
}

TEST(HtmlReport, Base64MatchesRfc4648) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

std::string decode_base64(const std::string& text) {
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return "";
  out.resize(static_cast<size_t>(n));
  // EVP_DecodeBlock counts the padding's zero bytes too.
  const size_t pad = text.size() >= 2 && text.substr(text.size() - 2) == "==" ? 2
                     : !text.empty() && text.back() == '=' ? 1 : 0;
  out.resize(out.size() - pad);
  return out;
}

// A page as the pipeline builds it: training_summary.json, inference_results.json
// and config.json of a 3-epoch fast-net run, in the shapes src/pipeline/pipeline.cpp
// and src/metrics/eval_metrics.cpp write (raw arrays, nested objects and all).
json make_summary() {
  std::vector<std::string> names = kClasses;
  names[3] = "<cat&dog>";
  const json model = {{"class_names", names}, {"depth", 0},   {"dropout", 0.3},
                      {"input_size", 32},     {"type", "fast"}, {"width", 32},
                      {"mean", {0.4914, 0.4822, 0.4465}}, {"std", {0.247, 0.2435, 0.2616}}};
  json history = json::array();
  for (int e = 1; e <= 3; ++e) {
    history.push_back({{"epoch", e},
                       {"loss", 1.234567 / e},
                       {"accuracy", 0.51234 + 0.1 * e},
                       {"top3_accuracy", 0.8 + 0.05 * e},
                       {"val_loss", 1.5 / e},
                       {"val_accuracy", e == 2 ? 0.8 : 0.7},
                       {"val_top3_accuracy", 0.9},
                       {"learning_rate", e == 1 ? 0.0668 : 1e-06}});
  }
  json per_class = json::object();
  for (size_t i = 0; i < names.size(); ++i) {
    const bool empty = i == 5;  // a class with no test images: nulls
    per_class[names[i]] = {{"accuracy", empty ? json(nullptr) : json(0.8)}, {"precision", 0.9},
                           {"recall", empty ? json(nullptr) : json(0.8)},  {"f1", 0.847},
                           {"support", empty ? 0 : 1000},                    {"predicted", 1100}};
  }
  json bins = json::array();
  for (int b = 0; b < 15; ++b) {
    bins.push_back(
        {{"lo", b / 15.0}, {"hi", (b + 1) / 15.0}, {"count", 100}, {"accuracy", 0.5}, {"mean_confidence", 0.5}});
  }
  const json test = {{"accuracy", 0.874391}, {"top3_accuracy", 0.9876}, {"loss", 0.312444},
                     {"num_samples", 10000},  {"tta", true},           {"checkpoint", "(weights of this run)"}};
  json training = {{"model", model},
                   {"parameters", 498104},
                   {"data", {{"train_images", 4000}, {"validation_images", 5000}, {"test_images", 10000}}},
                   {"device", "cpu"},
                   {"threads", 2},
                   {"world_size", 1},
                   {"version", "0.1.0"},
                   {"torch_version", "1.13.0"},
                   {"epochs_run", 3},
                   {"stop_reason", "completed: epoch 3 of 3"},
                   {"wall_seconds", 704.4},
                   {"train_seconds", 650.2},
                   {"images_per_second", 1234.56},
                   {"history", history},
                   {"best_epoch", 2},
                   {"best_metrics", history[1]},
                   {"test", test},
                   {"eval_seconds", 12.3}};
  json inference = {{"format", "cifar10-inference-results"},
                    {"version", 1},
                    {"accuracy", 0.874391},
                    {"top3_accuracy", 0.9876},
                    {"loss", 0.312444},
                    {"num_samples", 10000},
                    {"per_class", per_class},
                    {"class_names", names},
                    {"confusion_matrix", {{"rows", "true"}, {"columns", "predicted"},
                                          {"counts", std::vector<std::vector<int>>(10, std::vector<int>(10, 100))}}},
                    {"confidence",
                     {{"bins", 20},
                      {"correct", {{"count", 8744}, {"mean", 0.91}, {"histogram", std::vector<int>(20, 1)}}},
                      {"wrong", {{"count", 1256}, {"mean", 0.62}, {"histogram", std::vector<int>(20, 1)}}}}},
                    {"calibration", {{"ece", 0.031234}, {"num_bins", 15}, {"bins", bins}}},
                    {"model", model},
                    {"checkpoint", "(weights of this run)"},
                    {"data", "test_batch.bin (10000 images)"},
                    {"tta", true}};
  json config = {{"batch-size", 512},   {"crop-padding", 2},      {"data-archive", ""},
                 {"data-dir", "/data/\"x\"<y>"}, {"epochs", 3},   {"flip", true},
                 {"learning-rate", 0.2}, {"lr-schedule", "onecycle"}, {"min-lr", 1e-06},
                 {"model-type", "fast"}, {"monitor", "val_accuracy"}, {"normalization", "standard"},
                 {"optimizer", "sgd"},   {"rotation", 0.0},        {"cutout", 0}};
  return {{"training", training}, {"inference", inference}, {"config", config}};
}

// HTML's five escapes undone, as a browser shows the text.
std::string unescape(std::string s) {
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&amp;", "&"}}) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
      s.replace(at, from.size(), to);
    }
  }
  return s;
}

// The first table after `heading` (an <h2> or <h3> text), as rows of cell
// texts (th and td alike), each row's class attribute kept in `classes`.
struct Table {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> classes;
  // The value cell of the row whose first cell is `label`; "(none)" if absent.
  std::string value(const std::string& label) const {
    for (const auto& r : rows) {
      if (r.size() == 2 && r[0] == label) return r[1];
    }
    return "(none)";
  }
};
// Each (label, value) row of a two-column table, as expected.
void expect_rows(const Table& t, const std::vector<std::pair<std::string, std::string>>& expected) {
  for (const auto& [label, value] : expected) EXPECT_EQ(t.value(label), value) << label;
}

Table table_after(const std::string& html, const std::string& heading) {
  Table t;
  const size_t h = html.find(">" + heading + "</h");
  if (h == std::string::npos) return t;
  const size_t begin = html.find("<table>", h), end = html.find("</table>", begin);
  if (begin == std::string::npos || end == std::string::npos) return t;
  for (size_t tr = html.find("<tr", begin); tr != std::string::npos && tr < end; tr = html.find("<tr", tr + 1)) {
    const size_t tr_end = html.find("</tr>", tr);
    const std::string row = html.substr(tr, tr_end - tr);
    const size_t cls = row.find("class=\"");
    const bool has_class = cls != std::string::npos && cls < row.find('>');
    t.classes.push_back(has_class ? row.substr(cls + 7, row.find('"', cls + 7) - cls - 7) : "");
    std::vector<std::string> cells;
    for (size_t c = row.find("<t", 3); c != std::string::npos; c = row.find("<t", c + 1)) {
      const size_t open_end = row.find('>', c);
      const size_t close = row.find("</t", open_end);
      cells.push_back(unescape(row.substr(open_end + 1, close - open_end - 1)));
    }
    t.rows.push_back(cells);
  }
  return t;
}

TEST(HtmlReport, IsSelfContainedWithHeadlineNumbersAndEscapedNames) {
  TempDir tmp("report");
  const fs::path results = tmp / "results";
  make_all_plots(results);
  // A plot in a subfolder is found too.
  plot_class_accuracy(std::vector<double>(10, 0.5), kClasses, results / "extra");
  write_html_report(results, make_summary());
  const std::string html = read_file(results / "report.html");

  EXPECT_NE(html.find("<td>&lt;cat&amp;dog&gt;</td>"), std::string::npos);
  EXPECT_EQ(html.find("<cat&dog>"), std::string::npos);
  EXPECT_NE(html.find("/data/&quot;x&quot;&lt;y&gt;"), std::string::npos);

  // Every PNG embedded, in pipeline order, byte for byte.
  const std::string marker = "src=\"data:image/png;base64,";
  std::vector<std::string> embedded;
  for (size_t at = html.find(marker); at != std::string::npos; at = html.find(marker, at + 1)) {
    const size_t begin = at + marker.size();
    embedded.push_back(decode_base64(html.substr(begin, html.find('"', begin) - begin)));
  }
  ASSERT_EQ(embedded.size(), std::size(kPlotSizes) + 1);
  EXPECT_TRUE(embedded.front() == read_file(results / "training_history.png"));
  EXPECT_TRUE(embedded.back() == read_file(results / "prediction_samples.png"));
  for (const fs::path& png : {results / "confusion_matrix.png", results / "extra" / "class_accuracy.png"}) {
    EXPECT_EQ(std::count(embedded.begin(), embedded.end(), read_file(png)), 1) << png;
  }

  // Nothing outside the file: every src is a data URI, no links or scripts.
  size_t srcs = 0;
  for (size_t at = html.find("src="); at != std::string::npos; at = html.find("src=", at + 1)) ++srcs;
  EXPECT_EQ(srcs, embedded.size());
  for (const char* s : {"href=", "<link", "<script", "http://", "https://", "url("}) {
    EXPECT_EQ(html.find(s), std::string::npos) << s;
  }
  expect_no_temporaries(results);
}

// The value of the headline card labelled `label`, with its note.
std::string card(const std::string& html, const std::string& label) {
  const std::string open = "<div class=\"label\">" + html_escape(label) + "</div><div class=\"value\">";
  const size_t at = html.find(open);
  if (at == std::string::npos) return "(no card)";
  const size_t begin = at + open.size();
  std::string value = unescape(html.substr(begin, html.find("</div>", begin) - begin));
  const std::string note = "<div class=\"note\">";
  const size_t card_end = html.find("</div></div>", begin);
  const size_t n = html.find(note, begin);
  if (n != std::string::npos && n < card_end + 6) {
    const size_t text = n + note.size();
    value += " | " + unescape(html.substr(text, html.find("</div>", text) - text));
  }
  return value;
}

// Tables a person reads, not training_summary.json flattened: numbers
// rounded, the shape that applies to the model, a row per epoch with the
// best one marked, and no key the report does not know.
TEST(HtmlReport, ShowsTheRunAsTablesWithNumbersRoundedForPeople) {
  TempDir tmp("report");
  write_html_report(tmp.path(), make_summary());
  const std::string html = read_file(tmp / "report.html");

  EXPECT_EQ(card(html, "Test accuracy"), "87.44% | with TTA");
  EXPECT_EQ(card(html, "Top-3 accuracy"), "98.76%");
  EXPECT_EQ(card(html, "Test loss"), "0.3124");
  EXPECT_EQ(card(html, "ECE"), "0.03123");
  EXPECT_EQ(card(html, "Model"), "fast net");
  EXPECT_EQ(card(html, "Epochs"), "3");
  EXPECT_EQ(card(html, "Training time"), "11 min 44 s");
  EXPECT_EQ(card(html, "Val accuracy (best epoch, 2)"), "80.00%");

  const Table model = table_after(html, "Model");
  // Depth is ResNet's; the fast net has no dropout.
  expect_rows(model, {{"Model", "fast net (--model-type fast)"}, {"Width", "32"}, {"Depth", "(none)"},
                      {"Dropout", "(none)"}, {"Parameters", "498,104"}});
  EXPECT_EQ(model.value("Classes").substr(0, 24), "10: airplane, automobile");

  expect_rows(table_after(html, "Data"), {{"Training images", "4,000"},
                                          {"Validation images", "5,000"},
                                          {"Test images", "10,000"},
                                          {"Augmentation", "horizontal flip, random crop (2 px padding)"},
                                          {"Data folder", "/data/\"x\"<y>"}});
  expect_rows(table_after(html, "Training"), {{"Epochs", "3 of 3"},
                                              {"Stopped", "completed: epoch 3 of 3"},
                                              {"Time", "11 min 44 s (validation and checkpoints included)"},
                                              {"Throughput", "1,235 images/s"},
                                              {"Best epoch", "2 by val_accuracy"}});

  const Table epochs = table_after(html, "Per epoch");
  ASSERT_EQ(epochs.rows.size(), 4u);
  EXPECT_EQ(epochs.rows[0], (std::vector<std::string>{"Epoch", "Loss", "Accuracy", "Top-3", "Val loss", "Val accuracy",
                                                      "Val top-3", "Learning rate"}));
  EXPECT_EQ(epochs.rows[1], (std::vector<std::string>{"1", "1.235", "61.23%", "85.00%", "1.500", "70.00%", "90.00%",
                                                      "0.0668"}));
  EXPECT_EQ(epochs.rows[2][0], "\u2605 2");
  EXPECT_EQ(epochs.classes[2], "best");
  EXPECT_EQ(epochs.classes[1], "");
  EXPECT_EQ(epochs.rows[3][1], "0.4115");
  EXPECT_EQ(epochs.rows[3][7], "1e-06");

  expect_rows(table_after(html, "Test results"),
              {{"Accuracy", "87.44%"},
               {"Loss", "0.3124"},
               {"Expected calibration error", "0.03123"},
               {"Test-time augmentation", "yes: each image's flipped and shifted views averaged"},
               {"Mean confidence", "right: 91.00% over 8,744; wrong: 62.00% over 1,256"}});

  const Table classes = table_after(html, "Per class");
  ASSERT_EQ(classes.rows.size(), 11u);
  EXPECT_EQ(classes.rows[0], (std::vector<std::string>{"Class", "Accuracy", "Precision", "Recall", "F1", "Test images",
                                                       "Predicted"}));
  EXPECT_EQ(classes.rows[4], (std::vector<std::string>{"<cat&dog>", "80.00%", "90.00%", "80.00%", "84.70%", "1,000",
                                                       "1,100"}));
  EXPECT_EQ(classes.rows[6], (std::vector<std::string>{"dog", "n/a", "90.00%", "n/a", "84.70%", "0", "1,100"}));

  // Nothing dumped raw: no dotted keys, no arrays, no counts of entries.
  for (const char* raw : {"model.depth", "model.type", "calibration.", "confidence.", "history", "best_metrics",
                          "entries]", "values]", "histogram", "confusion_matrix", "cifar10-inference-results",
                          "[0.4914"}) {
    EXPECT_EQ(html.find(raw), std::string::npos) << raw;
  }

  // The configuration in full, the record: every key a row, "" included.
  const Table config = table_after(html, "Configuration");
  EXPECT_EQ(config.rows.size(), make_summary()["config"].size());
  expect_rows(config, {{"data-archive", ""}, {"min-lr", "1e-06"}, {"flip", "true"}, {"data-dir", "/data/\"x\"<y>"}});
}

// A ResNet shows its depth and dropout, not the fast net's width; an
// evaluation-only page (no training record, no history) has no training
// section and takes the test figures it has.
TEST(HtmlReport, ShowsTheShapeThatAppliesToTheModel) {
  TempDir tmp("report");
  json summary = make_summary();
  summary["training"]["model"]["type"] = "resnet";
  summary["training"]["model"]["depth"] = 56;
  write_html_report(tmp.path(), summary);
  expect_rows(table_after(read_file(tmp / "report.html"), "Model"),
              {{"Model", "ResNet-56 (--model-type resnet)"}, {"Depth", "56"}, {"Dropout", "0.30"}, {"Width", "(none)"}});

  json evaluation = {{"training", {{"model", summary["training"]["model"]}, {"test", summary["training"]["test"]}}}};
  write_html_report(tmp.path(), evaluation);
  const std::string html = read_file(tmp / "report.html");
  EXPECT_EQ(html.find("<h2>Training</h2>"), std::string::npos);
  EXPECT_EQ(card(html, "Test accuracy"), "87.44% | with TTA");
  EXPECT_EQ(table_after(html, "Test results").value("Weights"), "(weights of this run)");
}

std::vector<std::string> embedded_pngs(const std::string& html) {
  const std::string marker = "src=\"data:image/png;base64,";
  std::vector<std::string> out;
  for (size_t at = html.find(marker); at != std::string::npos; at = html.find(marker, at + 1)) {
    const size_t begin = at + marker.size();
    out.push_back(decode_base64(html.substr(begin, html.find('"', begin) - begin)));
  }
  return out;
}

// An earlier run in the same --output-dir left its PNGs in results/; the
// pipeline passes the plots this run drew, and only those are shown.
TEST(HtmlReport, EmbedsOnlyThePlotsItIsGiven) {
  TempDir tmp("report");
  const fs::path results = tmp / "results";
  make_all_plots(results);  // the earlier run's
  std::vector<fs::path> drawn;
  drawn.push_back(plot_class_accuracy(std::vector<double>(10, 0.25), kClasses, results));
  drawn.push_back(plot_confusion_matrix(make_confusion(), kClasses, results));
  EXPECT_EQ(drawn, (std::vector<fs::path>{results / "class_accuracy.png", results / "confusion_matrix.png"}));

  write_html_report(results, make_summary(), drawn);
  const std::string html = read_file(results / "report.html");
  const auto embedded = embedded_pngs(html);
  ASSERT_EQ(embedded.size(), 2u);
  // Pipeline order, whatever order they were passed in.
  EXPECT_TRUE(embedded[0] == read_file(results / "confusion_matrix.png"));
  EXPECT_TRUE(embedded[1] == read_file(results / "class_accuracy.png"));
  for (const char* stale : {"training_history.png", "reliability_diagram.png", "Training history:"}) {
    EXPECT_EQ(html.find(stale), std::string::npos) << stale;
  }

  // No list: every PNG in the folder, as before.
  write_html_report(results, make_summary());
  EXPECT_EQ(embedded_pngs(read_file(results / "report.html")).size(), std::size(kPlotSizes));
}

TEST(HtmlReport, RendersWhateverIsPresent) {
  TempDir tmp("report");
  write_html_report(tmp.path(), json::object());
  const std::string empty = read_file(tmp / "report.html");
  EXPECT_NE(empty.find("<h1>CIFAR-10 report</h1>"), std::string::npos);
  EXPECT_EQ(empty.find("<img"), std::string::npos);
  EXPECT_EQ(empty.find("class=\"card\""), std::string::npos);

  write_html_report(tmp.path(), {{"inference", {{"accuracy", 0.5}}}});
  const std::string only = read_file(tmp / "report.html");
  EXPECT_NE(only.find("50.00%"), std::string::npos);
  EXPECT_EQ(only.find("<h2>Training</h2>"), std::string::npos);

  EXPECT_THROW(write_html_report(tmp.path(), {{"training", "not an object"}}), UserError);
  EXPECT_THROW(write_html_report(tmp.path(), json::array()), UserError);
}

}  // namespace
}  // namespace cifar
