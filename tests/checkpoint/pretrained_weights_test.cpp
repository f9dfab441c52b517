// --pretrained-weights imagenet | none | FILE through the binary: the
// ImageNet file is fetched once from a loopback HTTP server (never the
// internet) into $CIFAR10_CACHE, checked against the SHA-256 prefix in its
// name, and refused before any data is read when it cannot be had.
#include "checkpoint/pretrained_weights.h"

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "data/archive.h"
#include "pth_fixtures.h"
#include "test_util.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;
using testing::listing;
using testing::LoopbackServer;
using testing::PthFixtures;
using testing::run_cifar10;
using testing::TempDir;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A served folder and a cache folder. `served` gets files under names the
// test chooses, such as torchvision's <arch>-<sha256 prefix>.pth.
struct Fetch : ::testing::Test {
  TempDir tmp{"weights"};
  fs::path served = tmp / "served";
  fs::path cache = tmp / "cache";
  fs::path out = tmp / "run";

  Fetch() { fs::create_directories(served); }

  // `fixture`'s bytes under `name`; "{sha}" in it becomes the file's first
  // 8 SHA-256 digits.
  std::string serve(const std::string& fixture, std::string name) {
    const std::string bytes = read_file(PthFixtures::get() / fixture);
    if (auto at = name.find("{sha}"); at != std::string::npos) name.replace(at, 5, sha256_hex(bytes).substr(0, 8));
    testing::write_bytes(served / name, bytes);
    return name;
  }

  // A short EfficientNet run; epochs 0 stops after the weights are loaded.
  testing::ProcessResult run(const std::vector<std::string>& extra, int epochs = 0,
                             const fs::path& data = testing::data_root()) {
    std::vector<std::string> args{"--model-type",        "efficientnet", "--data-dir",        data.string(),
                                  "--output-dir",        out.string(),   "--epochs",          std::to_string(epochs),
                                  "--train-limit",       "64",           "--validation-size", "32",
                                  "--batch-size",        "32",           "--test-limit",      "32",
                                  "--skip-visualization"};
    if (epochs == 0) args.push_back("--skip-inference");
    args.insert(args.end(), extra.begin(), extra.end());
    return run_cifar10(args, 600, {"CIFAR10_CACHE=" + cache.string()});
  }

  // `line` is the run's first on stdout: the configuration's header follows it.
  static void expect_first_line(const testing::ProcessResult& r, const std::string& line) {
    const auto at = r.output.find(line + "\n");
    ASSERT_NE(at, std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("cifar10 "), at + line.size() + 1) << r.output;
  }

  // The one error line of a run that exited 2.
  static std::string error_line(const testing::ProcessResult& r) {
    EXPECT_EQ(r.exit_code, 2) << r.output;
    const auto pos = r.output.find("error: ");
    EXPECT_NE(pos, std::string::npos) << r.output;
    return pos == std::string::npos ? "" : r.output.substr(pos, r.output.find('\n', pos) - pos);
  }
};

TEST_F(Fetch, ImagenetIsDownloadedOnceCheckedCachedAndFineTunedHeadFirst) {
  const std::string name = serve("efficientnet_b0.pth", "efficientnet_b0_rwightman-{sha}.pth");
  const std::string sha = sha256_hex(read_file(served / name));
  const fs::path cached = cache / name;
  {
    LoopbackServer server(served);
    auto r = run({"--pretrained-url", server.url("/" + name)}, /*epochs=*/1);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "downloading " + server.url("/" + name))) << r.output;
    expect_first_line(r, "EfficientNet-B0 from ImageNet weights, " + cached.string() + ", sha256 " + sha);
    EXPECT_TRUE(contains(r.output, "Loaded 358 tensors from " + cached.string() +
                                       "; a new 10-class classifier replaces the file's 1000-class one"))
        << r.output;
    EXPECT_TRUE(contains(r.output, "Training the head only until epoch 1")) << r.output;
    const auto config = nlohmann::json::parse(read_file(out / "results/config.json"));
    EXPECT_EQ(config["pretrained-weights"], "imagenet");
    EXPECT_EQ(config["freeze-backbone"], true);
  }
  EXPECT_EQ(listing(cache), std::vector<std::string>{name}) << "no temporary file left";
  EXPECT_EQ(read_file(cached), read_file(served / name));
  // The server is gone: the cache serves, with no download.
  auto again = run({"--pretrained-url", "http://127.0.0.1:9/" + name});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_FALSE(contains(again.output, "downloading")) << again.output;
  EXPECT_TRUE(contains(again.output, "EfficientNet-B0 from ImageNet weights, " + cached.string())) << again.output;
}

// Offline: one line naming the URL, the cache file and the way out, exit
// 2, and no data read (the data folder is never made).
TEST_F(Fetch, OfflineIsOneLineBeforeAnyDataIsRead) {
  const std::string url = "http://127.0.0.1:" + std::to_string(testing::find_free_loopback_port()) +
                          "/efficientnet_b0_rwightman-3dd342df.pth";
  const fs::path data = tmp / "no-data-yet";
  const std::string line =
      error_line(run({"--pretrained-url", url, "--data-url", "http://127.0.0.1:9/x.tar.gz"}, 0, data));
  EXPECT_TRUE(contains(line, "cannot download " + url)) << line;
  EXPECT_TRUE(contains(line, (cache / "efficientnet_b0_rwightman-3dd342df.pth").string())) << line;
  EXPECT_TRUE(contains(line, "--pretrained-weights none (from scratch) or --pretrained-weights FILE")) << line;
  EXPECT_FALSE(fs::exists(data)) << "the data was looked for";
  EXPECT_FALSE(fs::exists(cache)) << "the cache folder made for the download stays";
}

// A file whose bytes do not match the prefix in its name (another file
// served, or a download cut short) is refused and not cached.
TEST_F(Fetch, AChecksumMismatchIsRefusedAndNothingIsCached) {
  LoopbackServer server(served);
  const std::string wrong = serve("efficientnet_b0.pth", "efficientnet_b0_rwightman-00000000.pth");
  std::string line = error_line(run({"--pretrained-url", server.url("/" + wrong)}));
  EXPECT_TRUE(contains(line, "checksum mismatch: " + server.url("/" + wrong) + " has SHA-256 ")) << line;
  EXPECT_TRUE(contains(line, (cache / wrong).string()) && contains(line, "--pretrained-weights none")) << line;
  // The first half of the real file, under the real file's name.
  const std::string whole = read_file(PthFixtures::get() / "efficientnet_b0.pth");
  const std::string name = "efficientnet_b0_rwightman-" + sha256_hex(whole).substr(0, 8) + ".pth";
  testing::write_bytes(served / name, read_file(PthFixtures::get() / "truncated.pth"));
  line = error_line(run({"--pretrained-url", server.url("/" + name)}));
  EXPECT_TRUE(contains(line, "checksum mismatch")) << line;
  EXPECT_FALSE(fs::exists(cache)) << "the cache folder made for the download stays";
}

TEST_F(Fetch, ADamagedCachedFileIsRefusedNamingIt) {
  const std::string name = serve("efficientnet_b0.pth", "efficientnet_b0_rwightman-{sha}.pth");
  testing::write_bytes(cache / name, read_file(PthFixtures::get() / "truncated.pth"));
  const std::string line = error_line(run({"--pretrained-url", "http://127.0.0.1:9/" + name}));
  EXPECT_TRUE(contains(line, "checksum mismatch: the cached " + (cache / name).string())) << line;
  EXPECT_TRUE(contains(line, "delete it to download it again")) << line;
}

// A file named without a prefix cannot be checked, and the run says so.
TEST_F(Fetch, ANameWithoutAHashPrefixIsReadAndSaysItWasNotChecked) {
  LoopbackServer server(served);
  const std::string name = serve("efficientnet_b0.pth", "efficientnet_b0.pth");
  auto r = run({"--pretrained-url", server.url("/" + name)});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "note: efficientnet_b0.pth carries no SHA-256 prefix in its name")) << r.output;
  EXPECT_TRUE(contains(r.output, "its SHA-256 is " + sha256_hex(read_file(served / name)))) << r.output;
}

// Hostile files are refused after the checksum, by name, before the data.
TEST_F(Fetch, HostileFilesAreRefusedByName) {
  LoopbackServer server(served);
  const std::string evil = serve("evil.pth", "evil-{sha}.pth");
  std::string line = error_line(run({"--pretrained-url", server.url("/" + evil)}));
  EXPECT_TRUE(contains(line, "names the global posix.system")) << line;
  EXPECT_FALSE(fs::exists(PthFixtures::get() / "evil_ran"));
  line = error_line(run({"--pretrained-weights", (PthFixtures::get() / "list.pth").string()}));
  EXPECT_TRUE(contains(line, "holds pickle opcode EMPTY_LIST")) << line;
  line = error_line(run({"--pretrained-weights", (PthFixtures::get() / "short_storage.pth").string()}));
  EXPECT_TRUE(contains(line, "but its record holds 44 bytes")) << line;
}

// Weights that do not fit the model are refused before the data is read
// (here, before CIFAR-10 would be downloaded into a missing folder).
TEST_F(Fetch, AFileThatDoesNotFitIsRefusedBeforeTheData) {
  const fs::path data = tmp / "no-data-yet";
  const std::string line = error_line(run(
      {"--pretrained-weights", (PthFixtures::get() / "tiny.pth").string(), "--data-url", "http://127.0.0.1:9/x.tar.gz"},
      0, data));
  EXPECT_TRUE(contains(line, "do not fit efficientnet: missing: ")) << line;
  EXPECT_FALSE(fs::exists(data)) << "the data was looked for";
}

TEST_F(Fetch, NoneStartsFromScratchWithoutLookingForWeights) {
  auto r = run({"--pretrained-weights", "none", "--pretrained-url", "http://127.0.0.1:9/never.pth"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_first_line(r, "EfficientNet-B0 from scratch");
  EXPECT_FALSE(contains(r.output, "Loaded")) << r.output;
  EXPECT_FALSE(fs::exists(cache));
  const auto config = nlohmann::json::parse(read_file(out / "results/config.json"));
  EXPECT_EQ(config["freeze-backbone"], false);
}

// A torchvision .pth given as a file: read, no download, no head-first default.
TEST_F(Fetch, APthFileIsReadAsGiven) {
  const fs::path file = PthFixtures::get() / "efficientnet_b0.pth";
  auto r = run({"--pretrained-weights", file.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_first_line(r, "EfficientNet-B0 from " + file.string() + ", sha256 " + sha256_hex(read_file(file)));
  EXPECT_TRUE(contains(r.output, "Loaded 358 tensors from " + file.string())) << r.output;
}

}  // namespace
}  // namespace cifar
