// What a real run writes, read the way the report, the plots and TensorBoard
// read it: the keys the pipeline writes (src/pipeline/pipeline.cpp) and the
// keys the readers look up must agree, and only a real run shows whether
// they do. One tiny CNN run on real data (about 4 s).
#include <nlohmann/json.hpp>

#include <cmath>
#include <set>

#include "common/atomic_file.h"
#include "reporting/format.h"
#include "reporting/html_report.h"
#include "reporting/tensorboard.h"
#include "test_util.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

// The value of the headline card labelled `label`, or "(no card)".
std::string card_value(const std::string& html, const std::string& label) {
  const std::string open = "<div class=\"label\">" + html_escape(label) + "</div><div class=\"value\">";
  const size_t at = html.find(open);
  if (at == std::string::npos) return "(no card)";
  const size_t begin = at + open.size();
  return html.substr(begin, html.find("</div>", begin) - begin);
}

std::string percent(double fraction) { return format_fixed(fraction * 100, 2) + "%"; }

class RealRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new testing::TempDir("pipeline_outputs");
    // 8 test images cannot cover 10 classes: some have no samples.
    // --log-every 2: batch scalars in TensorBoard every 2 steps.
    const auto r = testing::run_cifar10(
        {"--threads", "1", "--data-dir", testing::data_root().string(), "--model-type", "cnn", "--epochs", "2",
         "--train-limit", "256", "--validation-size", "64", "--test-limit", "8", "--batch-size", "64",
         "--log-every", "2", "--output-dir", (*tmp_ / "out").string()},
        300);
    exit_code_ = r.exit_code;
    output_ = r.output;
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }
  void SetUp() override { ASSERT_EQ(exit_code_, 0) << output_; }
  static fs::path results() { return *tmp_ / "out" / "results"; }
  static json read_json(const std::string& name) { return json::parse(read_file(results() / name)); }

  static testing::TempDir* tmp_;
  static int exit_code_;
  static std::string output_;
};
testing::TempDir* RealRun::tmp_ = nullptr;
int RealRun::exit_code_ = -1;
std::string RealRun::output_;

TEST_F(RealRun, ClassesWithoutTestSamplesAreNullNotZeroAndLeftOutOfTheMean) {
  const json inference = read_json("inference_results.json");
  const std::string dat = read_file(results() / "class_accuracy.dat");
  const std::string gp = read_file(results() / "class_accuracy.gp");
  const std::string html = read_file(results() / "report.html");
  const auto names = inference.at("class_names");
  int absent = 0, present = 0;
  double sum = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    const json& k = inference.at("per_class").at(names[i].get<std::string>());
    const std::string row = "\n" + std::to_string(i) + " ";
    if (k.at("support") == 0) {
      ++absent;
      EXPECT_TRUE(k.at("accuracy").is_null()) << k;
      EXPECT_TRUE(k.at("recall").is_null()) << k;
      EXPECT_NE(dat.find(row + "? "), std::string::npos) << i << "\n" << dat;
      EXPECT_NE(gp.find("set label " + std::to_string(i + 1) + " 'n/a'"), std::string::npos) << gp;
      // Its row in the per-class table: recall and accuracy say n/a.
      const size_t at = html.find("<tr><td>" + html_escape(names[i].get<std::string>()) + "</td>");
      ASSERT_NE(at, std::string::npos);
      const std::string row_html = html.substr(at, html.find("</tr>", at) - at);
      size_t na = 0;
      for (size_t p = row_html.find(">n/a<"); p != std::string::npos; p = row_html.find(">n/a<", p + 1)) ++na;
      EXPECT_GE(na, 2u) << row_html;
    } else {
      ++present;
      sum += k.at("accuracy").get<double>();
      EXPECT_EQ(dat.find(row + "? "), std::string::npos) << i << "\n" << dat;
    }
  }
  ASSERT_GT(absent, 0) << "8 images covered every class";
  ASSERT_GT(present, 0);
  const std::string mean = "'mean " + format_fixed(100 * sum / present, 1) + "%'";
  EXPECT_NE(gp.find(mean), std::string::npos) << mean << "\n" << gp;
}

TEST_F(RealRun, ReportCardsShowTheNumbersThePipelineWrites) {
  const json summary = read_json("training_summary.json");
  const json inference = read_json("inference_results.json");
  const std::string html = read_file(results() / "report.html");
  EXPECT_EQ(card_value(html, "Test accuracy"), percent(inference.at("accuracy").get<double>()));
  // ECE to 4 significant digits.
  const double ece = inference.at("calibration").at("ece").get<double>();
  const std::string ece_card = card_value(html, "ECE");
  EXPECT_NEAR(std::stod(ece_card), ece, 5e-4 * std::pow(10.0, std::floor(std::log10(ece)))) << ece_card;
  EXPECT_EQ(card_value(html, "Epochs"), "2");
  EXPECT_EQ(summary.at("epochs_run"), 2);
  const double wall = summary.at("wall_seconds").get<double>();
  ASSERT_LT(wall, 60.0);
  EXPECT_EQ(card_value(html, "Training time"), format_fixed(wall, 1) + " s");
  const std::string best = "Val accuracy (best epoch, " + summary.at("best_epoch").dump() + ")";
  EXPECT_EQ(card_value(html, best), percent(summary.at("best_metrics").at("val_accuracy").get<double>())) << best;
}

// The report's tables read what the pipeline writes: a row per epoch of
// the history with the best one marked, the data's real counts, the
// shape that applies to a CNN, and none of the records' raw keys.
TEST_F(RealRun, ReportTablesReadTheKeysThePipelineWrites) {
  const json summary = read_json("training_summary.json");
  const std::string html = read_file(results() / "report.html");
  auto section = [&](const std::string& heading) {
    const size_t at = html.find(">" + heading + "</h");
    return at == std::string::npos ? std::string() : html.substr(at, html.find("</table>", at) - at);
  };
  const std::string epochs = section("Per epoch");
  size_t rows = 0;
  for (size_t at = epochs.find("<tr"); at != std::string::npos; at = epochs.find("<tr", at + 1)) ++rows;
  EXPECT_EQ(rows, 1 + summary.at("epochs_run").get<size_t>()) << epochs;
  EXPECT_NE(epochs.find("<tr class=\"best\"><td class=\"num\">\u2605 " + summary.at("best_epoch").dump() + "</td>"),
            std::string::npos)
      << epochs;
  const std::string data = section("Data");
  for (const char* row : {"<th>Training images</th><td>256</td>",
                          "<th>Validation images</th><td>64</td>",
                          "<th>Test images</th><td>8</td>"}) {
    EXPECT_NE(data.find(row), std::string::npos) << row << "\n" << data;
  }
  const std::string model = section("Model");
  EXPECT_NE(model.find("<th>Dropout</th>"), std::string::npos) << model;
  EXPECT_EQ(model.find("<th>Width</th>"), std::string::npos) << model;
  EXPECT_EQ(model.find("<th>Depth</th>"), std::string::npos) << model;
  for (const char* raw :
       {"model.depth", "model.type", "calibration.", "entries]", "values]", "histogram", "best_metrics"}) {
    EXPECT_EQ(html.find(raw), std::string::npos) << raw;
  }
}

TEST_F(RealRun, BatchScalarsAreTaggedOnce) {
  std::set<std::string> tags;
  const fs::path dir = *tmp_ / "out" / "logs" / "tensorboard" / "train_batch";
  for (const auto& file : list_event_files(dir)) {
    for (const auto& e : read_tensorboard_events(file)) {
      for (const auto& v : e.summary().value()) tags.insert(v.tag());
    }
  }
  EXPECT_EQ(tags, (std::set<std::string>{"batch_accuracy", "batch_loss", "batch_loss_recent", "batch_top3_accuracy"}));
}

}  // namespace
}  // namespace cifar
