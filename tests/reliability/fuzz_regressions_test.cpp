// Every input that once crashed a fuzz target (fuzz/regressions/<target>/,
// kept as libFuzzer wrote it) goes through the product's own entry points
// again: it must now be refused with one printable line, or accepted. Run
// under scripts/sanitize.sh, this also checks them for memory errors
// without a clang build.
#include "common/atomic_file.h"
#include "common/error.h"
#include "config/cli.h"
#include "data/image_io.h"
#include "models/registry.h"
#include "test_util.h"
#include "models/safetensors.h"
#include "checkpoint/checkpoint.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;

std::vector<fs::path> findings(const std::string& target) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(testing::source_dir() / "fuzz/regressions" / target, ec)) {
    files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Runs `parse`; a refusal must be a UserError of one printable line.
template <class F>
void refused_cleanly_or_accepted(const fs::path& file, F&& parse) {
  try {
    parse();
  } catch (const UserError& e) {
    const std::string what = e.what();
    for (char c : what) EXPECT_GE(static_cast<unsigned char>(c), 0x20) << file << ": " << what;
  } catch (const std::exception& e) {
    ADD_FAILURE() << file << ": not a UserError: " << e.what();
  }
}

TEST(FuzzRegressions, ImagesAreRefusedCleanly) {
  const auto files = findings("image");
  EXPECT_GE(files.size(), 5u);
  for (const auto& f : files) {
    refused_cleanly_or_accepted(f, [&] { resize_image(decode_image(read_file(f), f.string()), 32, 32); });
  }
}

TEST(FuzzRegressions, SafetensorsAreRefusedCleanly) {
  const auto files = findings("safetensors");
  EXPECT_GE(files.size(), 1u);
  for (const auto& f : files) {
    refused_cleanly_or_accepted(f, [&] { decode_safetensors(read_file(f), f.string()); });
  }
}

TEST(FuzzRegressions, CheckpointsAreRefusedCleanly) {
  const auto files = findings("checkpoint");
  EXPECT_GE(files.size(), 5u);
  for (const auto& f : files) {
    const std::string bytes = read_file(f);
    ASSERT_FALSE(bytes.empty());
    const std::string_view rest = std::string_view(bytes).substr(1);
    // The first byte picks the fuzz target's mode (fuzz/checkpoint_fuzz.cpp).
    if (bytes[0] % 2 == 1) {
      refused_cleanly_or_accepted(f, [&] {
        const auto meta = nlohmann::json::parse(rest, nullptr, /*allow_exceptions=*/false);
        check_checkpoint_meta(meta, f.string());
        resume_point(meta, f.string());
      });
    } else {
      refused_cleanly_or_accepted(f, [&] {
        const auto data = parse_checkpoint(rest, f.string());
        auto model = build_model(spec_from_json(data.meta.at("spec")));
        load_model_state(data, *model, f.string());
        torch::optim::Adam adam(model->parameters());
        load_optimizer_state(data, adam, f.string());
      });
    }
  }
}

TEST(FuzzRegressions, ConfigFilesAreRefusedCleanly) {
  const auto files = findings("config");
  EXPECT_GE(files.size(), 2u);
  for (const auto& f : files) refused_cleanly_or_accepted(f, [&] { parse_config_text(read_file(f), f.string()); });
}

}  // namespace
}  // namespace cifar
