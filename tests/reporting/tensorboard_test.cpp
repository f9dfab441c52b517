#include "reporting/tensorboard.h"

#include <signal.h>
#include <stb/stb_image.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cfloat>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <thread>

#include "common/atomic_file.h"
#include "common/error.h"
#include "fake_train_context.h"
#include "test_util.h"
#include "training/callbacks/tensorboard_callback.h"
#include "checkpoint/checkpoint.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;
using testing::FakeTrainContext;
using testing::TempDir;

// ---- CRC32C and framing ----------------------------------------------------

TEST(Crc32c, MatchesPublishedVectors) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the CRC catalogue's check value
  EXPECT_EQ(crc32c(""), 0u);
  // RFC 3720 (iSCSI) B.4 test vectors.
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(crc32c(ascending), 0x46DD794Eu);
}

TEST(Crc32c, MaskRotatesRightBy15AndAddsTheTfRecordConstant) {
  EXPECT_EQ(mask_crc32c(0), 0xA282EAD8u);
  EXPECT_EQ(mask_crc32c(0xE3069283u), 0xC78AB0E5u);
  EXPECT_EQ(masked_crc32c("123456789"), 0xC78AB0E5u);
  // The addition wraps modulo 2^32.
  EXPECT_EQ(mask_crc32c(0xFFFFFFFFu), 0xA282EAD7u);
}

uint64_t le(const std::string& s, size_t at, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t(uint8_t(s[at + i])) << (8 * i);
  return v;
}

TEST(TfRecord, FramesLengthAndDataWithMaskedCrcs) {
  std::string out;
  append_tfrecord(out, "abc");
  ASSERT_EQ(out.size(), 8u + 4 + 3 + 4);
  EXPECT_EQ(le(out, 0, 8), 3u);
  EXPECT_EQ(le(out, 8, 4), masked_crc32c(out.substr(0, 8)));
  EXPECT_EQ(out.substr(12, 3), "abc");
  EXPECT_EQ(le(out, 15, 4), masked_crc32c("abc"));
}

// ---- Writer and reader -----------------------------------------------------

std::string host() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

TEST(TensorBoardWriter, NamesFileAndStartsWithFileVersion) {
  TempDir tmp("tb");
  const double before = double(std::time(nullptr));
  fs::path path;
  {
    TensorBoardWriter writer(tmp / "run");
    path = writer.path();
  }
  EXPECT_EQ(path.parent_path(), tmp / "run");
  const std::regex name("events\\.out\\.tfevents\\.\\d{10}\\." + std::regex_replace(host(), std::regex("\\."), "\\.") +
                        "\\." + std::to_string(::getpid()) + "\\.\\d+");
  EXPECT_TRUE(std::regex_match(path.filename().string(), name)) << path;
  const auto events = read_tensorboard_events(path);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].file_version(), "brain.Event:2");
  EXPECT_GE(events[0].wall_time(), before);
  EXPECT_LE(events[0].wall_time(), double(std::time(nullptr)) + 1);
}

TEST(TensorBoardWriter, TwoWritersInOneFolderGetTwoFiles) {
  TempDir tmp("tb");
  TensorBoardWriter a(tmp.path()), b(tmp.path());
  EXPECT_NE(a.path(), b.path());
  EXPECT_EQ(list_event_files(tmp.path()), (std::vector<fs::path>{a.path(), b.path()}));
}

// The bucket a value falls in, by brute force over [limit[i-1], limit[i]):
// TensorFlow's histogram.cc takes std::upper_bound, the first limit above
// the value; past the last limit it is the last bucket.
size_t bucket_of(double v, const std::vector<double>& limits) {
  for (size_t i = 0; i < limits.size(); ++i) {
    if (v < limits[i]) return i;
  }
  return limits.size() - 1;
}

// Undoes the merging of empty runs: counts per default bucket, each proto
// bucket at the index of its own limit.
std::vector<double> expand(const tensorboard::HistogramProto& h) {
  const auto& limits = histogram_bucket_limits();
  std::vector<double> counts(limits.size(), 0.0);
  for (int i = 0; i < h.bucket_size(); ++i) {
    const auto at = std::lower_bound(limits.begin(), limits.end(), h.bucket_limit(i));
    EXPECT_TRUE(at != limits.end() && *at == h.bucket_limit(i)) << h.bucket_limit(i) << " is not a default limit";
    if (at != limits.end()) counts[static_cast<size_t>(at - limits.begin())] += h.bucket(i);
  }
  return counts;
}

TEST(Histogram, DefaultLimitsAreTensorFlows) {
  const auto& limits = histogram_bucket_limits();
  // -DBL_MAX, the negated growing limits, 0, 1e-12 growing by 10% while
  // under 1e20, DBL_MAX (tensorflow/core/lib/histogram/histogram.cc).
  std::vector<double> growing;
  for (double v = 1e-12; v < 1e20; v *= 1.1) growing.push_back(v);
  const size_t n = growing.size();
  ASSERT_EQ(limits.size(), 2 * n + 3);
  EXPECT_EQ(limits.front(), -DBL_MAX);
  EXPECT_EQ(limits.back(), DBL_MAX);
  EXPECT_EQ(limits[n + 1], 0.0);
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(limits[n + 2 + i], growing[i]);
    EXPECT_EQ(limits[n - i], -growing[i]);
  }
  EXPECT_TRUE(std::is_sorted(limits.begin(), limits.end()));
  EXPECT_EQ(std::adjacent_find(limits.begin(), limits.end()), limits.end());
}

TEST(Histogram, CountsEveryValueInItsLeftClosedRightOpenBucket) {
  torch::manual_seed(1);
  auto values = torch::randn({1000}, torch::kDouble) * 3;
  const auto& limits = histogram_bucket_limits();
  // Values exactly on a limit belong to the next limit's bucket.
  values = torch::cat({values, torch::tensor({0.0, 1e-12, limits[900], -limits[900], 1e30,
                                              std::numeric_limits<double>::infinity()},
                                             torch::kDouble)});
  const auto h = make_histogram(values.to(torch::kFloat).to(torch::kDouble));
  const auto v = values.to(torch::kFloat).to(torch::kDouble);
  const auto* data = v.data_ptr<double>();
  std::vector<double> expected(limits.size(), 0.0);
  for (int64_t i = 0; i < v.numel(); ++i) expected[bucket_of(data[i], limits)] += 1;

  EXPECT_EQ(h.num(), double(v.numel()));
  EXPECT_EQ(h.min(), v.min().item<double>());
  EXPECT_EQ(h.max(), std::numeric_limits<double>::infinity());
  double total = 0;
  for (double c : h.bucket()) total += c;
  EXPECT_EQ(total, h.num());
  ASSERT_EQ(h.bucket_limit_size(), h.bucket_size());
  EXPECT_TRUE(std::is_sorted(h.bucket_limit().begin(), h.bucket_limit().end()));
  EXPECT_EQ(expand(h), expected);
  // Merging keeps it small: a run of empties costs one bucket.
  const auto filled = std::count_if(expected.begin(), expected.end(), [](double c) { return c > 0; });
  EXPECT_LE(h.bucket_size(), 2 * filled + 1);
  for (int i = 1; i < h.bucket_size(); ++i) {
    EXPECT_FALSE(h.bucket(i) == 0 && h.bucket(i - 1) == 0) << "unmerged empty run at " << i;
  }
}

// TensorFlow counts a value equal to a limit in the bucket above it: 0.0
// (ReLU outputs, zero-initialised biases) goes to [0, 1e-12), the bucket
// whose limit is 1e-12, not to the one ending at 0.
TEST(Histogram, AValueOnALimitGoesToTheNextBucketAsInTensorFlow) {
  const auto& limits = histogram_bucket_limits();
  const size_t zero = static_cast<size_t>(std::find(limits.begin(), limits.end(), 0.0) - limits.begin());
  ASSERT_EQ(limits[zero + 1], 1e-12);
  const auto h = make_histogram(torch::tensor({0.0, 0.0, 0.0, 1e-12, -1e-12, limits[zero + 5]}, torch::kDouble));
  std::vector<std::pair<double, double>> filled;  // (bucket limit, count) of the non-empty buckets
  for (int i = 0; i < h.bucket_size(); ++i) {
    if (h.bucket(i) > 0) filled.emplace_back(h.bucket_limit(i), h.bucket(i));
  }
  EXPECT_EQ(filled, (std::vector<std::pair<double, double>>{
                        {0.0, 1},                // -1e-12: [-1e-12, 0)
                        {1e-12, 3},              // the zeros: [0, 1e-12)
                        {limits[zero + 2], 1},   // 1e-12: [1e-12, 1.1e-12)
                        {limits[zero + 6], 1}}));  // a limit further up: the bucket above it
  EXPECT_EQ(h.num(), 6);
  EXPECT_EQ(h.min(), -1e-12);
}

TEST(Histogram, DropsNanAndSkipsWhenNothingIsLeft) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto h = make_histogram(torch::tensor({nan, 1.0, nan, 2.0}, torch::kDouble));
  EXPECT_EQ(h.num(), 2);
  EXPECT_EQ(h.sum(), 3);
  EXPECT_EQ(h.sum_squares(), 5);
  EXPECT_EQ(make_histogram(torch::tensor({nan}, torch::kDouble)).num(), 0);
  EXPECT_EQ(make_histogram(torch::zeros({0})).num(), 0);

  TempDir tmp("tb");
  fs::path path;
  {
    TensorBoardWriter writer(tmp.path());
    writer.add_histogram("empty", torch::zeros({0}), 1);
    path = writer.path();
  }
  EXPECT_EQ(read_tensorboard_events(path).size(), 1u);  // file_version only
}

struct DecodedPng {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;  // HWC
};

DecodedPng decode_png(const std::string& png) {
  DecodedPng out;
  unsigned char* data =
      stbi_load_from_memory(reinterpret_cast<const unsigned char*>(png.data()),
                            static_cast<int>(png.size()), &out.width, &out.height, &out.channels, 0);
  if (!data) {
    ADD_FAILURE() << "not a PNG stb can read: " << stbi_failure_reason();
    return out;
  }
  out.pixels.assign(data, data + size_t(out.width) * out.height * out.channels);
  stbi_image_free(data);
  return out;
}

std::vector<uint8_t> bytes_of(const torch::Tensor& hwc) {
  auto c = hwc.contiguous();
  return std::vector<uint8_t>(c.data_ptr<uint8_t>(), c.data_ptr<uint8_t>() + c.numel());
}

TEST(TensorBoardWriter, RoundTripsScalarsHistogramImagesAndSessionStart) {
  TempDir tmp("tb");
  torch::manual_seed(2);
  const auto chw = torch::randint(0, 256, {3, 5, 7}, torch::kUInt8);
  const auto hwc = torch::randint(0, 256, {4, 6, 4}, torch::kUInt8);
  const auto weights = torch::randn({64, 3});
  fs::path path;
  {
    TensorBoardWriter writer(tmp / "train");
    writer.add_scalar("epoch_loss", 0.75, 0);
    writer.add_scalar("epoch_loss", 0.5, 1);
    writer.add_histogram("fc/weight", weights, 1);
    writer.add_image("chw", chw, 2);
    writer.add_image("hwc", hwc, 3);
    writer.add_session_start(4);
    writer.flush();
    writer.add_scalar("epoch_accuracy", 1.0 / 3, 4);  // flushed by the destructor
    path = writer.path();
  }
  const auto events = read_tensorboard_events(path);
  ASSERT_EQ(events.size(), 8u);
  EXPECT_EQ(events[0].file_version(), "brain.Event:2");

  auto value_of = [&](size_t i) -> const tensorboard::Summary::Value& {
    EXPECT_TRUE(events[i].has_summary()) << "record " << i;
    EXPECT_EQ(events[i].summary().value_size(), 1) << "record " << i;
    return events[i].summary().value(0);
  };
  EXPECT_EQ(value_of(1).tag(), "epoch_loss");
  EXPECT_EQ(events[1].step(), 0);
  EXPECT_EQ(value_of(1).simple_value(), 0.75f);
  EXPECT_EQ(value_of(2).simple_value(), 0.5f);
  EXPECT_EQ(events[2].step(), 1);

  const auto& histo = value_of(3);
  EXPECT_EQ(histo.tag(), "fc/weight");
  ASSERT_TRUE(histo.has_histo());
  EXPECT_EQ(histo.histo().num(), 192);
  double total = 0;
  for (double c : histo.histo().bucket()) total += c;
  EXPECT_EQ(total, histo.histo().num());
  EXPECT_EQ(histo.histo().min(), weights.min().item<float>());
  EXPECT_EQ(histo.histo().max(), weights.max().item<float>());

  const auto& img = value_of(4);
  EXPECT_EQ(img.tag(), "chw");
  EXPECT_EQ(events[4].step(), 2);
  ASSERT_TRUE(img.has_image());
  EXPECT_EQ(img.image().height(), 5);
  EXPECT_EQ(img.image().width(), 7);
  EXPECT_EQ(img.image().colorspace(), 3);
  auto png = decode_png(img.image().encoded_image_string());
  EXPECT_EQ(png.width, 7);
  EXPECT_EQ(png.height, 5);
  EXPECT_EQ(png.channels, 3);
  EXPECT_EQ(png.pixels, bytes_of(chw.permute({1, 2, 0})));

  const auto& rgba = value_of(5);
  EXPECT_EQ(rgba.image().colorspace(), 4);
  png = decode_png(rgba.image().encoded_image_string());
  EXPECT_EQ(png.width, 6);
  EXPECT_EQ(png.height, 4);
  EXPECT_EQ(png.channels, 4);
  EXPECT_EQ(png.pixels, bytes_of(hwc));

  ASSERT_TRUE(events[6].has_session_log());
  EXPECT_EQ(events[6].session_log().status(), tensorboard::SessionLog::START);
  EXPECT_EQ(events[6].step(), 4);
  EXPECT_EQ(value_of(7).simple_value(), float(1.0 / 3));
  for (const auto& e : events) EXPECT_GT(e.wall_time(), 1.6e9);
}

TEST(TensorBoardWriter, RejectsImagesItCannotEncode) {
  TempDir tmp("tb");
  TensorBoardWriter writer(tmp.path());
  EXPECT_THROW(writer.add_image("f", torch::zeros({3, 8, 8}), 0), UserError);       // float
  EXPECT_THROW(writer.add_image("d", torch::zeros({8, 8}, torch::kUInt8), 0), UserError);
  EXPECT_THROW(writer.add_image("c", torch::zeros({5, 8, 6}, torch::kUInt8), 0), UserError);
}

TEST(TileImages, LaysOutRowsOfEightWithPadding) {
  auto images = torch::zeros({10, 3, 4, 5}, torch::kUInt8);
  for (int i = 0; i < 10; ++i) images[i].fill_(i + 1);
  const auto grid = tile_images(images, 8, 64, 2);
  ASSERT_EQ(grid.sizes(), (std::vector<int64_t>{3, 2 * 6 + 2, 8 * 7 + 2}));
  EXPECT_EQ(grid[0][2][2].item<int>(), 1);           // image 0, top left
  EXPECT_EQ(grid[1][2][2 + 7 * 7].item<int>(), 8);    // image 7, end of row 0
  EXPECT_EQ(grid[2][2 + 6][2 + 7].item<int>(), 10);   // image 9, row 1 column 1
  EXPECT_EQ(grid[0][1][2].item<int>(), 0);            // padding
  EXPECT_EQ(grid[0][8][2 + 2 * 7].item<int>(), 0);    // empty cell of row 1
  EXPECT_EQ(tile_images(images, 8, 4).size(2), 4 * 7 + 2);  // max_images caps
}

// ---- Corruption is detected and named ---------------------------------------

// Byte offsets of each record's start in an event file.
std::vector<size_t> record_offsets(const std::string& bytes) {
  std::vector<size_t> at;
  for (size_t p = 0; p < bytes.size(); p += 16 + le(bytes, p, 8)) at.push_back(p);
  return at;
}

fs::path sample_file(const TempDir& tmp) {
  TensorBoardWriter writer(tmp / "run");
  for (int i = 0; i < 4; ++i) writer.add_scalar("s", i, i);
  return writer.path();
}

std::string error_reading(const fs::path& path) {
  try {
    read_tensorboard_events(path);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(TensorBoardReader, NamesTheRecordWhoseDataByteFlipped) {
  TempDir tmp("tb");
  const auto path = sample_file(tmp);
  std::string bytes = read_file(path);
  const auto at = record_offsets(bytes);
  ASSERT_EQ(at.size(), 5u);
  ASSERT_EQ(read_tensorboard_events(path).size(), 5u);
  bytes[at[2] + 12 + 3] ^= 0x01;
  testing::write_bytes(path, bytes);
  const std::string err = error_reading(path);
  EXPECT_NE(err.find(path.string()), std::string::npos) << err;
  EXPECT_NE(err.find("record 2 at byte " + std::to_string(at[2])), std::string::npos) << err;
  EXPECT_NE(err.find("data CRC mismatch"), std::string::npos) << err;
}

TEST(TensorBoardReader, NamesTheRecordWhoseLengthOrCrcByteFlipped) {
  TempDir tmp("tb");
  const auto path = sample_file(tmp);
  const std::string good = read_file(path);
  const auto at = record_offsets(good);

  std::string bytes = good;
  bytes[at[1]] ^= 0x40;  // the length
  testing::write_bytes(path, bytes);
  std::string err = error_reading(path);
  EXPECT_NE(err.find("record 1 "), std::string::npos) << err;
  EXPECT_NE(err.find("length CRC mismatch"), std::string::npos) << err;

  bytes = good;
  bytes[at[3] + 12 + (at[4] - at[3] - 16) + 1] ^= 0x80;  // record 3's data CRC
  testing::write_bytes(path, bytes);
  err = error_reading(path);
  EXPECT_NE(err.find("record 3 "), std::string::npos) << err;
  EXPECT_NE(err.find("data CRC mismatch"), std::string::npos) << err;
}

TEST(TensorBoardReader, NamesATruncatedRecord) {
  TempDir tmp("tb");
  const auto path = sample_file(tmp);
  const std::string good = read_file(path);
  const auto at = record_offsets(good);
  for (size_t cut : {good.size() - 1, at[4] + 13, at[4] + 5}) {
    testing::write_bytes(path, good.substr(0, cut));
    const std::string err = error_reading(path);
    EXPECT_NE(err.find("record 4 at byte " + std::to_string(at[4]) + " is truncated"),
              std::string::npos)
        << "cut at " << cut << ": " << err;
  }
}

TEST(TensorBoardReader, RejectsAValidRecordThatIsNotAnEvent) {
  std::string bytes;
  append_tfrecord(bytes, "\xFF\xFF\xFF");  // framed, CRCs right, not a protobuf
  try {
    parse_tensorboard_events(bytes, "mem");
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("mem: record 0"), std::string::npos) << e.what();
  }
}

TEST(TensorBoardWriter, FlushedRecordsSurviveAKill) {
  TempDir tmp("tb");
  const fs::path dir = tmp / "run";
  const pid_t pid = ::fork();
  if (pid == 0) {
    // The child writes, flushes, queues one more record and dies without
    // running a destructor, as a SIGKILL would leave it.
    TensorBoardWriter writer(dir);
    for (int i = 0; i < 3; ++i) writer.add_scalar("epoch_loss", i, i);
    writer.flush();
    writer.add_scalar("epoch_loss", 99, 99);
    ::raise(SIGKILL);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  const auto files = list_event_files(dir);
  ASSERT_EQ(files.size(), 1u);
  const auto events = read_tensorboard_events(files[0]);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[3].summary().value(0).simple_value(), 2.0f);
}

// ---- The callback ----------------------------------------------------------

// What TensorBoard shows for one run folder, by the rule of its Python
// loader (EventAccumulator._CheckForRestartAndMaybePurge): every file in
// order; the first SessionLog START in the folder is ignored, and each later
// one drops every point with step >= its step (_Purge with by_tags=False).
struct RunView {
  std::map<std::string, std::vector<std::pair<int64_t, float>>> scalars;
  std::map<std::string, std::vector<std::pair<int64_t, tensorboard::HistogramProto>>> histograms;
  std::map<std::string, std::vector<std::pair<int64_t, tensorboard::Summary::Image>>> images;
  int starts = 0;
};

template <typename Series>
void purge(Series& series, int64_t step) {
  for (auto& [tag, points] : series) {
    points.erase(std::remove_if(points.begin(), points.end(),
                                [&](const auto& p) { return p.first >= step; }),
                 points.end());
  }
}

RunView view_run(const fs::path& dir) {
  RunView view;
  for (const auto& file : list_event_files(dir)) {
    for (const auto& e : read_tensorboard_events(file)) {
      if (e.has_session_log() && e.session_log().status() == tensorboard::SessionLog::START) {
        if (++view.starts == 1) continue;
        purge(view.scalars, e.step());
        purge(view.histograms, e.step());
        purge(view.images, e.step());
      }
      for (const auto& v : e.summary().value()) {
        if (v.has_histo()) {
          view.histograms[v.tag()].emplace_back(e.step(), v.histo());
        } else if (v.has_image()) {
          view.images[v.tag()].emplace_back(e.step(), v.image());
        } else {
          view.scalars[v.tag()].emplace_back(e.step(), v.simple_value());
        }
      }
    }
  }
  return view;
}

std::vector<std::pair<int64_t, float>> series(std::initializer_list<int64_t> steps,
                                             const std::function<double(int64_t)>& value) {
  std::vector<std::pair<int64_t, float>> out;
  for (int64_t s : steps) out.emplace_back(s, static_cast<float>(value(s)));
  return out;
}

TEST(TensorBoardCallback, WritesKerasTagsHistogramsAndSamples) {
  TempDir tmp("tb");
  FakeTrainContext ctx;
  ctx.samples = torch::randint(0, 256, {10, 3, 32, 32}, torch::kUInt8);
  TensorBoardCallback cb(tmp / "logs", /*update_freq=*/3);
  cb.on_train_begin(ctx);
  testing::run_epochs(cb, ctx, 0, 0, 3);
  cb.on_train_end({}, ctx);

  const fs::path root = tmp / "logs" / "tensorboard";
  for (const char* run : {"train", "validation", "train_batch"}) {
    EXPECT_EQ(list_event_files(root / run).size(), 1u) << run;
  }
  const auto train = view_run(root / "train");
  const auto val = view_run(root / "validation");
  const auto batch = view_run(root / "train_batch");
  using testing::epoch_logs;
  auto epochs = [](const char* key) {
    return series({0, 1, 2}, [key](int64_t e) { return epoch_logs(0, int(e)).at(key); });
  };
  EXPECT_EQ(train.scalars.at("epoch_loss"), epochs("loss"));
  EXPECT_EQ(train.scalars.at("epoch_accuracy"), epochs("accuracy"));
  EXPECT_EQ(train.scalars.at("epoch_top3_accuracy"), epochs("top3_accuracy"));
  EXPECT_EQ(train.scalars.at("epoch_learning_rate"), epochs("lr"));
  EXPECT_EQ(train.scalars.size(), 4u);
  EXPECT_EQ(val.scalars.at("epoch_loss"), epochs("val_loss"));
  EXPECT_EQ(val.scalars.at("epoch_accuracy"), epochs("val_accuracy"));
  EXPECT_EQ(val.scalars.at("epoch_top3_accuracy"), epochs("val_top3_accuracy"));
  EXPECT_EQ(val.scalars.size(), 3u);

  // 12 steps, every third logged, at the 1-based global step.
  auto steps = [](const char* key) {
    return series({3, 6, 9, 12}, [key](int64_t s) { return testing::batch_logs(0, s).at(key); });
  };
  EXPECT_EQ(batch.scalars.at("batch_loss"), steps("loss"));
  EXPECT_EQ(batch.scalars.at("batch_accuracy"), steps("accuracy"));
  EXPECT_EQ(batch.scalars.size(), 2u);

  // A histogram per parameter per epoch, of the parameter's values.
  EXPECT_EQ(train.histograms.size(), 2u);
  for (const auto& p : ctx.net->named_parameters()) {
    const auto& h = train.histograms.at(TensorBoardCallback::histogram_tag(p.key()));
    ASSERT_EQ(h.size(), 3u) << p.key();
    EXPECT_EQ(h[2].first, 2);
    EXPECT_EQ(h[2].second.num(), double(p.value().numel()));
    EXPECT_EQ(h[2].second.sum(), p.value().to(torch::kDouble).sum().item<double>());
  }
  EXPECT_TRUE(train.histograms.count("fc/weight"));

  // One grid of the 10 samples, 8 per row, at the first epoch.
  ASSERT_EQ(train.images.size(), 1u);
  const auto& samples = train.images.at("augmented_samples");
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_EQ(samples[0].first, 0);
  const auto png = decode_png(samples[0].second.encoded_image_string());
  EXPECT_EQ(png.width, 8 * 34 + 2);
  EXPECT_EQ(png.height, 2 * 34 + 2);
  EXPECT_EQ(png.channels, 3);
  // A fresh run's START is each folder's first: TensorBoard ignores it.
  EXPECT_EQ(train.starts, 1);
  EXPECT_EQ(val.starts, 1);
  EXPECT_EQ(batch.starts, 1);
}

// TensorBoard ignores the first START in a folder, so a resumed run's START
// purges the killed run's stale points only if the fresh run wrote one:
// each folder's first event after the file version is a START at the first
// step the run will log (epoch 0; global step 1).
TEST(TensorBoardCallback, AFreshRunStartsEveryFolderWithASessionStart) {
  TempDir tmp("tb");
  FakeTrainContext ctx;
  TensorBoardCallback cb(tmp.path(), 2);
  cb.on_train_begin(ctx);
  testing::run_epochs(cb, ctx, 0, 0, 2);
  cb.on_train_end({}, ctx);
  const std::vector<std::pair<std::string, int64_t>> first_steps{{"train", 0}, {"validation", 0}, {"train_batch", 1}};
  for (const auto& [run, step] : first_steps) {
    const auto files = list_event_files(tmp / "tensorboard" / run);
    ASSERT_EQ(files.size(), 1u) << run;
    const auto events = read_tensorboard_events(files[0]);
    ASSERT_GE(events.size(), 3u) << run;
    EXPECT_TRUE(events[0].has_file_version()) << run;
    ASSERT_TRUE(events[1].has_session_log()) << run;
    EXPECT_EQ(events[1].session_log().status(), tensorboard::SessionLog::START) << run;
    EXPECT_EQ(events[1].step(), step) << run;
    const auto starts = std::count_if(events.begin(), events.end(), [](const auto& e) { return e.has_session_log(); });
    EXPECT_EQ(starts, 1) << run;
  }
}

TEST(TensorBoardCallback, LearningRateIsWrittenOnceWhenBothKeysArePresent) {
  TempDir tmp("tb");
  FakeTrainContext ctx;
  TensorBoardCallback cb(tmp.path());
  cb.on_train_begin(ctx);
  Logs logs{{"loss", 1}, {"lr", 0.5}, {"learning_rate", 0.25}};
  cb.on_epoch_end(0, logs, ctx);
  cb.on_train_end(logs, ctx);
  const auto train = view_run(tmp / "tensorboard" / "train");
  EXPECT_EQ(train.scalars.at("epoch_learning_rate"), series({0}, [](int64_t) { return 0.25; }));
  EXPECT_FALSE(train.scalars.count("epoch_lr"));
  EXPECT_FALSE(fs::exists(tmp / "tensorboard" / "train_batch"));  // update_freq 0
}

// --validation-size 0: no val_ values, so no empty validation run for
// TensorBoard to list (Keras makes the folder only when it writes to it).
TEST(TensorBoardCallback, ARunWithoutValidationHasNoValidationRun) {
  TempDir tmp("tb");
  FakeTrainContext ctx;
  TensorBoardCallback cb(tmp.path());
  cb.on_train_begin(ctx);
  Logs logs{{"loss", 1}, {"accuracy", 0.5}, {"lr", 0.5}};
  cb.on_epoch_end(0, logs, ctx);
  cb.on_train_end(logs, ctx);
  EXPECT_EQ(view_run(tmp / "tensorboard" / "train").scalars.at("epoch_loss").size(), 1u);
  EXPECT_FALSE(fs::exists(tmp / "tensorboard" / "validation"));
}

TEST(TensorBoardCallback, SamplesAreRetriedUntilTheTrainerHasThemAndSkippedIfNever) {
  TempDir tmp("tb");
  FakeTrainContext ctx;
  TensorBoardCallback cb(tmp / "a");
  cb.on_train_begin(ctx);
  cb.on_epoch_begin(0, ctx);  // no samples yet
  ctx.samples = torch::full({2, 3, 8, 8}, 200, torch::kUInt8);
  Logs logs{{"loss", 1}};
  cb.on_epoch_end(0, logs, ctx);
  cb.on_epoch_begin(1, ctx);
  cb.on_epoch_end(1, logs, ctx);
  cb.on_train_end(logs, ctx);
  const auto a = view_run(tmp / "a" / "tensorboard" / "train");
  ASSERT_EQ(a.images.at("augmented_samples").size(), 1u);
  EXPECT_EQ(a.images.at("augmented_samples")[0].first, 0);

  FakeTrainContext never;
  TensorBoardCallback quiet(tmp / "b");
  quiet.on_train_begin(never);
  testing::run_epochs(quiet, never, 0, 0, 2);
  quiet.on_train_end({}, never);
  EXPECT_TRUE(view_run(tmp / "b" / "tensorboard" / "train").images.empty());
}

TEST(TensorBoardCallback, NonWriterRankWritesNothing) {
  TempDir tmp("tb");
  FakeTrainContext ctx;
  ctx.writer = false;
  ctx.samples = torch::zeros({1, 3, 4, 4}, torch::kUInt8);
  TensorBoardCallback cb(tmp / "logs", 1);
  cb.on_train_begin(ctx);
  testing::run_epochs(cb, ctx, 0, 0, 2);
  cb.on_train_end({}, ctx);
  EXPECT_FALSE(fs::exists(tmp / "logs"));
}

// A run killed after its checkpoint leaves points past it; the resumed run
// must make TensorBoard show each step once, from the run that counts.
TEST(TensorBoardCallback, ResumeHidesThePointsTheKilledRunWroteAfterItsCheckpoint) {
  TempDir tmp("tb");
  const fs::path logs = tmp / "logs";
  nlohmann::json saved;
  int64_t saved_step = 0;
  {
    FakeTrainContext ctx;
    ctx.samples = torch::zeros({1, 3, 4, 4}, torch::kUInt8);
    TensorBoardCallback cb(logs, 2);
    cb.on_train_begin(ctx);
    // Checkpoint at the end of epoch 1; the run goes on through epoch 2 and
    // half of epoch 3, then is killed (no on_train_end).
    testing::run_epochs(cb, ctx, 1, 0, 3, [&](int epoch) {
      if (epoch == 1) {
        saved = cb.state();
        saved_step = ctx.step;
      }
    });
    cb.on_epoch_begin(3, ctx);
    for (int s = 0; s < 2; ++s) {
      ++ctx.step;
      cb.on_batch_end(s, testing::batch_logs(1, ctx.step), ctx);
    }
  }
  ASSERT_EQ(saved_step, 8);
  EXPECT_EQ(saved, (nlohmann::json{{"last_epoch", 1}, {"last_batch_step", 8}}));
  {
    FakeTrainContext ctx;
    ctx.samples = torch::zeros({1, 3, 4, 4}, torch::kUInt8);
    ctx.step = saved_step;
    TensorBoardCallback cb(logs, 2);
    cb.load_state(saved);
    cb.on_train_begin(ctx);
    testing::run_epochs(cb, ctx, 2, 2, 4);
    cb.on_train_end({}, ctx);
  }
  const fs::path root = logs / "tensorboard";
  const auto train = view_run(root / "train");
  const auto val = view_run(root / "validation");
  const auto batch = view_run(root / "train_batch");
  EXPECT_EQ(train.starts, 2);  // the fresh run's (ignored) and the resumed run's
  EXPECT_EQ(val.starts, 2);
  EXPECT_EQ(batch.starts, 2);
  auto run_of = [](int64_t epoch) { return epoch < 2 ? 1 : 2; };
  EXPECT_EQ(train.scalars.at("epoch_loss"), series({0, 1, 2, 3}, [&](int64_t e) {
              return testing::epoch_logs(run_of(e), int(e)).at("loss");
            }));
  EXPECT_EQ(val.scalars.at("epoch_loss"), series({0, 1, 2, 3}, [&](int64_t e) {
              return testing::epoch_logs(run_of(e), int(e)).at("val_loss");
            }));
  EXPECT_EQ(batch.scalars.at("batch_loss"),
            series({2, 4, 6, 8, 10, 12, 14, 16}, [](int64_t s) {
              return testing::batch_logs(s <= 8 ? 1 : 2, s).at("loss");
            }));
  const auto& h = train.histograms.at("fc/weight");
  ASSERT_EQ(h.size(), 4u);
  for (int64_t e = 0; e < 4; ++e) EXPECT_EQ(h[e].first, e);
  // Each run drew its samples once: at 0, and at the resumed epoch 2.
  const auto& img = train.images.at("augmented_samples");
  ASSERT_EQ(img.size(), 2u);
  EXPECT_EQ(img[0].first, 0);
  EXPECT_EQ(img[1].first, 2);
}

// A resume into another --output-dir: the run's points come along, so the
// new folder's curves start at epoch 0 and the START still hides what the
// killed run wrote after its checkpoint; the first folder is left as it was.
TEST(TensorBoardCallback, AResumeIntoAnotherFolderBringsTheRunsPoints) {
  TempDir tmp("tb");
  nlohmann::json saved;
  {
    FakeTrainContext ctx;
    TensorBoardCallback cb(tmp / "a", 0);
    cb.on_train_begin(ctx);
    testing::run_epochs(cb, ctx, 1, 0, 3, [&](int epoch) {
      if (epoch == 1) saved = cb.state();
    });  // killed after epoch 2, checkpoint from epoch 1
  }
  FakeTrainContext ctx;
  ctx.step = 2 * ctx.per_epoch;
  fs::create_directories(tmp / "b" / "tensorboard" / "train");  // empty: no runs of its own
  TensorBoardCallback cb(tmp / "b", 0, tmp / "a");
  cb.load_state(saved);
  cb.on_train_begin(ctx);
  testing::run_epochs(cb, ctx, 2, 2, 4);
  cb.on_train_end({}, ctx);
  auto run_of = [](int64_t epoch) { return epoch < 2 ? 1 : 2; };
  const fs::path moved = tmp / "b" / "tensorboard";
  EXPECT_EQ(view_run(moved / "train").scalars.at("epoch_loss"), series({0, 1, 2, 3}, [&](int64_t e) {
              return testing::epoch_logs(run_of(e), int(e)).at("loss");
            }));
  EXPECT_EQ(view_run(moved / "validation").scalars.at("epoch_loss"), series({0, 1, 2, 3}, [&](int64_t e) {
              return testing::epoch_logs(run_of(e), int(e)).at("val_loss");
            }));
  EXPECT_EQ(view_run(tmp / "a" / "tensorboard" / "train").scalars.at("epoch_loss").size(), 3u);
  EXPECT_EQ(list_event_files(tmp / "a" / "tensorboard" / "train").size(), 1u);
}

TEST(TensorBoardCallback, ResumeWithoutBatchLoggingStillHidesStaleBatchPoints) {
  TempDir tmp("tb");
  {
    FakeTrainContext ctx;
    TensorBoardCallback cb(tmp.path(), 1);
    cb.on_train_begin(ctx);
    testing::run_epochs(cb, ctx, 1, 0, 2);
  }
  FakeTrainContext ctx;
  ctx.step = 4;  // resumed after epoch 0
  TensorBoardCallback cb(tmp.path(), 0);
  cb.load_state(nlohmann::json::object());
  cb.on_train_begin(ctx);
  testing::run_epochs(cb, ctx, 2, 1, 2);
  cb.on_train_end({}, ctx);
  const auto batch = view_run(tmp / "tensorboard" / "train_batch");
  ASSERT_EQ(batch.scalars.at("batch_loss").size(), 4u);
  EXPECT_EQ(batch.scalars.at("batch_loss").back().first, 4);
}

// The trainer adds its own "batch_loss" (the loss since its last reading)
// to the running logs; prefixed again it became "batch_batch_loss".
TEST(TensorBoardCallback, TheTrainersBatchLossIsNotPrefixedTwice) {
  EXPECT_EQ(TensorBoardCallback::batch_tag("loss"), "batch_loss");
  EXPECT_EQ(TensorBoardCallback::batch_tag("batch_loss"), "batch_loss_recent");
  TempDir tmp("tb");
  FakeTrainContext ctx;
  TensorBoardCallback cb(tmp.path(), 1);
  cb.on_train_begin(ctx);
  cb.on_epoch_begin(0, ctx);
  ctx.step = 1;
  // The keys src/training/trainer.cpp puts in its running logs.
  cb.on_batch_end(0, {{"loss", 2.5}, {"accuracy", 0.25}, {"top3_accuracy", 0.5}, {"batch_loss", 1.5}}, ctx);
  cb.on_train_end({}, ctx);
  const auto batch = view_run(tmp / "tensorboard" / "train_batch");
  std::vector<std::string> tags;
  for (const auto& [tag, points] : batch.scalars) tags.push_back(tag);
  EXPECT_EQ(tags, (std::vector<std::string>{"batch_accuracy", "batch_loss", "batch_loss_recent", "batch_top3_accuracy"}));
  EXPECT_EQ(batch.scalars.at("batch_loss"), (std::vector<std::pair<int64_t, float>>{{1, 2.5f}}));
  EXPECT_EQ(batch.scalars.at("batch_loss_recent"), (std::vector<std::pair<int64_t, float>>{{1, 1.5f}}));
}

TEST(TensorBoardCallback, RejectsMalformedState) {
  TensorBoardCallback cb("unused");
  EXPECT_THROW(cb.load_state({{"last_epoch", "seven"}}), UserError);
}

// ---- A real run killed with SIGKILL mid-epoch, then resumed ----------------------

// The largest step of any point in the folder's event files; a record the
// writer is still appending (torn) makes that file count as unread.
int64_t largest_step(const fs::path& dir) {
  int64_t largest = 0;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return 0;
  for (const auto& file : list_event_files(dir)) {
    try {
      for (const auto& e : read_tensorboard_events(file)) {
        if (e.has_summary()) largest = std::max<int64_t>(largest, e.step());
      }
    } catch (const UserError&) {
    }
  }
  return largest;
}

// The kill -9 a scheduler or an OOM killer deals: no checkpoint at the kill,
// so the killed run's points after its last checkpoint are on disk when the
// resumed run logs the same steps again. TensorBoard must show each step
// once, in order.
TEST(TensorBoardRun, AResumeAfterSigkillShowsEachStepOnceInTensorBoard) {
  TempDir tmp("tb_kill");
  const fs::path out = tmp / "run";
  const fs::path root = out / "logs" / "tensorboard";
  constexpr int64_t kSteps = 1024 / 32, kEpochs = 3, kEvery = 2;
  auto args = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> a{"--model-type",    "cnn",  "--data-dir",   testing::data_root().string(),
                               "--output-dir",    out.string(), "--train-limit", "1024",
                               "--validation-size", "128", "--batch-size", "32",
                               "--epochs",        std::to_string(kEpochs), "--log-every", std::to_string(kEvery),
                               "--lr-schedule",   "cosine", "--skip-inference", "--skip-visualization",
                               "--threads",       "1",    "--seed",       "5"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  int64_t killed_at = 0;
  {
    testing::Child run(args({}));
    // Killed once the second epoch has logged a few batch points: the first
    // epoch's checkpoint is complete by then (checkpoints end an epoch).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(600);
    while ((killed_at = largest_step(root / "train_batch")) < kSteps + 3 * kEvery &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    run.send(SIGKILL);
    const auto r = run.wait(60);
    ASSERT_EQ(r.signal, SIGKILL) << r.output;
    killed_at = largest_step(root / "train_batch");
    ASSERT_GE(killed_at, kSteps + 3 * kEvery) << r.output;
  }
  const fs::path latest = out / "checkpoints" / "latest_model.pt";
  const auto meta = read_checkpoint(latest.string()).meta;
  const int64_t saved_step = meta.at("global_step").get<int64_t>();
  // The premise: points past the checkpoint were written and will be redone.
  ASSERT_LT(saved_step, killed_at) << meta.dump();
  ASSERT_LT(killed_at, kEpochs * kSteps) << "the run ended before the kill";

  const auto resumed = testing::run_cifar10(args({"--resume", latest.string()}), 600);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;

  auto steps_of = [](const std::vector<std::pair<int64_t, float>>& points) {
    std::vector<int64_t> steps;
    for (const auto& p : points) steps.push_back(p.first);
    return steps;
  };
  auto range = [](int64_t first, int64_t last, int64_t by) {
    std::vector<int64_t> v;
    for (int64_t s = first; s <= last; s += by) v.push_back(s);
    return v;
  };
  for (const char* run : {"train", "validation", "train_batch"}) {
    const auto files = list_event_files(root / run);
    ASSERT_EQ(files.size(), 2u) << run << ": one file per process";
    // TensorBoard reads a folder's files in name order: the same order.
    std::vector<fs::path> by_name = files;
    std::sort(by_name.begin(), by_name.end());
    EXPECT_EQ(by_name, files) << run;
    const RunView view = view_run(root / run);
    EXPECT_EQ(view.starts, 2) << run;
    ASSERT_FALSE(view.scalars.empty()) << run;
    for (const auto& [tag, points] : view.scalars) {
      const auto expected = std::string(run) == "train_batch" ? range(kEvery, kEpochs * kSteps, kEvery)
                                                              : range(0, kEpochs - 1, 1);
      EXPECT_EQ(steps_of(points), expected) << run << "/" << tag;
    }
  }
  // The same holds for the weight histograms: one per epoch.
  const RunView train = view_run(root / "train");
  for (const auto& [tag, points] : train.histograms) EXPECT_EQ(points.size(), size_t{kEpochs}) << tag;
}

// ---- TensorBoard itself, where it is installed ---------------------------------

bool python_has_tensorboard() {
  return std::system("python3 -c 'import tensorboard' >/dev/null 2>&1") == 0;
}

TEST(TensorBoardCallback, TensorBoardsOwnReaderAgrees) {
  if (!python_has_tensorboard()) GTEST_SKIP() << "python3 cannot import tensorboard";
  TempDir tmp("tb");
  FakeTrainContext ctx;
  ctx.samples = torch::randint(0, 256, {4, 3, 8, 8}, torch::kUInt8);
  TensorBoardCallback cb(tmp.path(), 2);
  cb.on_train_begin(ctx);
  testing::run_epochs(cb, ctx, 0, 0, 2);
  cb.on_train_end({}, ctx);
  const fs::path script = tmp / "read.py";
  {
    std::ofstream py(script);
    py << "import sys\n"
          "from tensorboard.backend.event_processing import event_accumulator as ea\n"
          "acc = ea.EventAccumulator(sys.argv[1], size_guidance={k: 0 for k in "
          "[ea.SCALARS, ea.HISTOGRAMS, ea.IMAGES, ea.COMPRESSED_HISTOGRAMS, ea.TENSORS]})\n"
          "acc.Reload()\n"
          "tags = acc.Tags()\n"
          "for t in sorted(tags['scalars']):\n"
          "    for e in acc.Scalars(t): print('S', t, e.step, repr(e.value))\n"
          "for t in sorted(tags['histograms']):\n"
          "    for e in acc.Histograms(t): print('H', t, e.step, int(e.histogram_value.num))\n"
          "for t in sorted(tags['images']):\n"
          "    for e in acc.Images(t): print('I', t, e.step, e.width, e.height)\n";
  }
  const fs::path out = tmp / "out.txt";
  auto read = [&](const std::string& run) {
    const std::string cmd = "python3 " + script.string() + " " +
                            (tmp / "tensorboard" / run).string() + " > " + out.string();
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return read_file(out);
  };
  const std::string train = read("train");
  EXPECT_NE(train.find("S epoch_loss 1 1.25"), std::string::npos) << train;
  EXPECT_NE(train.find("H fc/weight 1 36"), std::string::npos) << train;
  // Four 8x8 samples in one row, 2 pixels of padding around each.
  EXPECT_NE(train.find("I augmented_samples 0 42 12"), std::string::npos) << train;
  const std::string val = read("validation");
  EXPECT_NE(val.find("S epoch_loss 0 2.0"), std::string::npos) << val;
  const std::string batch = read("train_batch");
  EXPECT_NE(batch.find("S batch_loss 8 8.0"), std::string::npos) << batch;
}

}  // namespace
}  // namespace cifar
