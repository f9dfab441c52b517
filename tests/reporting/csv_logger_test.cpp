#include "training/callbacks/csv_logger.h"

#include <cfloat>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <regex>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "fake_train_context.h"
#include "reporting/csv.h"
#include "test_util.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;
using testing::FakeTrainContext;
using testing::TempDir;

// ---- CSV text ----------------------------------------------------------------

TEST(CsvText, NumbersAreShortestAndReadBackBitForBit) {
  EXPECT_EQ(csv_number(0.1), "0.1");
  EXPECT_EQ(csv_number(1e-05), "1e-05");
  EXPECT_EQ(csv_number(0.875), "0.875");
  EXPECT_EQ(csv_number(2), "2.0");
  EXPECT_EQ(csv_number(-0.0), "-0.0");
  EXPECT_EQ(csv_number(std::nan("")), "nan");
  EXPECT_EQ(csv_number(-HUGE_VAL), "-inf");
  const double values[] = {1.0 / 3,  2.0 / 3,          0.1 + 0.2,    1e-300, 5e-324,
                           DBL_MAX,  std::nextafter(1.0, 2.0), 123456.789, -7.25e17,
                           0.9123456789012345};
  for (double v : values) {
    const std::string text = csv_number(v);
    const double back = std::strtod(text.c_str(), nullptr);
    EXPECT_EQ(std::memcmp(&back, &v, sizeof v), 0) << text;
    // Shortest: with one significant digit fewer it would not read back.
    const std::string mantissa = text.substr(0, text.find('e'));
    std::string digits;
    for (char c : mantissa) {
      if (std::isdigit(static_cast<unsigned char>(c)) && !(digits.empty() && c == '0')) digits += c;
    }
    if (digits.size() > 1) {
      char shorter[64];
      std::snprintf(shorter, sizeof shorter, "%.*e", int(digits.size()) - 2, v);
      EXPECT_NE(std::strtod(shorter, nullptr), v) << text << " vs " << shorter;
    }
  }
}

// Keras' CSVLogger writes floats with Python's csv module, i.e. str(float):
// checked against Debian's Python itself on values where std::to_chars'
// shortest form differs ("1e-04", "2", "1e+16") and on 20,000 random
// doubles. The values travel as their bits, so Python sees the same double.
TEST(CsvText, NumbersAreWrittenAsPythonsStrOfAFloat) {
  if (!fs::exists("/usr/bin/python3")) GTEST_SKIP() << "no /usr/bin/python3 to compare with";
  std::vector<double> values = {0.0, -0.0, 1.0, 2.0, -3.0, 0.5, 1.0 / 3, 2.0 / 3, 0.1 + 0.2, 1e16, 1.5e16,
                                1e15, 9999999999999998.0, 123456789012345680.0, 1234.5, 0.0001, 0.00012345,
                                0.00001, 9.999e-05, 5e-324, DBL_MIN, DBL_MAX, -DBL_MAX, 1e-300, 1e300,
                                std::nan(""), HUGE_VAL, -HUGE_VAL, 0.874391, 1e-06, 2.5e-05, 0.0668};
  for (int e = -30; e <= 30; ++e) {
    values.push_back(std::pow(10.0, e));
    values.push_back(-std::pow(10.0, e) * 1.5);
  }
  std::mt19937_64 rng(2024);
  for (int i = 0; i < 10000; ++i) {
    const uint64_t bits = rng();
    double v;
    std::memcpy(&v, &bits, sizeof v);
    values.push_back(v);
  }
  std::uniform_real_distribution<double> unit(0, 1);
  std::uniform_int_distribution<int> exponent(-20, 20);
  for (int i = 0; i < 10000; ++i) values.push_back(unit(rng) * std::pow(10.0, exponent(rng)));

  TempDir tmp("csv");
  std::string hex;
  for (double v : values) {
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    char line[24];
    std::snprintf(line, sizeof line, "%016llx\n", static_cast<unsigned long long>(bits));
    hex += line;
  }
  testing::write_bytes(tmp / "bits.txt", hex);
  const std::string cmd = "/usr/bin/python3 -c 'import struct, sys\n"
                          "for line in open(sys.argv[1]):\n"
                          "    print(str(struct.unpack(\"<d\", bytes.fromhex(line.strip())[::-1])[0]))' " +
                          (tmp / "bits.txt").string() + " > " + (tmp / "python.txt").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::istringstream python(read_file(tmp / "python.txt"));
  size_t checked = 0, mismatches = 0;
  for (double v : values) {
    std::string expected;
    ASSERT_TRUE(std::getline(python, expected)) << "python printed fewer lines";
    ++checked;
    if (csv_number(v) != expected && ++mismatches <= 10) {
      ADD_FAILURE() << "python: " << expected << ", ours: " << csv_number(v);
    }
  }
  EXPECT_EQ(checked, values.size());
  EXPECT_EQ(mismatches, 0u);
}

TEST(CsvText, QuotesOnlyWhatNeedsItAndParsesItBack) {
  EXPECT_EQ(csv_field("val_loss"), "val_loss");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("a;b", ';'), "\"a;b\"");
  EXPECT_EQ(csv_field("a,b", ';'), "a,b");
  const std::vector<std::string> fields{"epoch", "a,b", "q\"", "line\nbreak", ""};
  const std::string text = csv_line(fields) + "1,2\r\n3";
  const auto records = parse_csv(text);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].fields, fields);
  EXPECT_TRUE(records[0].terminated);
  EXPECT_EQ(records[1].fields, (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(text.substr(records[1].begin, records[1].end - records[1].begin), "1,2\r\n");
  EXPECT_EQ(records[2].fields, (std::vector<std::string>{"3"}));
  EXPECT_FALSE(records[2].terminated);
}

// ---- The callback ------------------------------------------------------------

fs::path only_log_file(const fs::path& dir) {
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(dir)) found.push_back(e.path());
  EXPECT_EQ(found.size(), 1u);
  return found.empty() ? fs::path() : found[0];
}

TEST(CSVLogger, NamesTheFileByTimeAndCreatesItWhenTrainingBegins) {
  TempDir tmp("csv");
  FakeTrainContext ctx;
  CSVLogger a(tmp / "logs"), b(tmp / "logs");
  a.on_train_begin(ctx);
  b.on_train_begin(ctx);
  const std::regex name("training_log_\\d{8}_\\d{6}(_\\d+)?\\.csv");
  EXPECT_TRUE(std::regex_match(a.path().filename().string(), name)) << a.path();
  EXPECT_TRUE(std::regex_match(b.path().filename().string(), name)) << b.path();
  EXPECT_NE(a.path(), b.path());  // two runs in one second do not share a file
  EXPECT_EQ(a.path().parent_path(), tmp / "logs");
  EXPECT_TRUE(fs::exists(a.path()));
  EXPECT_EQ(fs::file_size(a.path()), 0u);
}

TEST(CSVLogger, WritesKerasHeaderSortedColumnsAndExactValues) {
  TempDir tmp("csv");
  FakeTrainContext ctx;
  CSVLogger cb(tmp.path());
  cb.on_train_begin(ctx);
  Logs e0{{"val_loss", 1.0 / 3}, {"loss", 0.1}, {"accuracy", 0.5}, {"lr", 1e-05}};
  Logs e1{{"val_loss", 0.2 + 0.1}, {"loss", 2.0 / 3}, {"accuracy", 0.625}, {"lr", 1e-05}};
  cb.on_epoch_end(0, e0, ctx);
  // After the first epoch the file already holds its header and row.
  EXPECT_EQ(read_file(cb.path()),
            "epoch,accuracy,loss,lr,val_loss\n0,0.5,0.1,1e-05,0.3333333333333333\n");
  EXPECT_EQ(csv_number(e1.at("val_loss")), "0.30000000000000004");
  cb.on_epoch_end(1, e1, ctx);
  cb.on_train_end(e1, ctx);

  const auto records = parse_csv(read_file(cb.path()));
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].fields,
            (std::vector<std::string>{"epoch", "accuracy", "loss", "lr", "val_loss"}));
  EXPECT_EQ(records[2].fields[0], "1");
  for (const auto& [key, value] : e1) {
    const auto col = std::find(records[0].fields.begin(), records[0].fields.end(), key) -
                     records[0].fields.begin();
    EXPECT_EQ(std::strtod(records[2].fields[col].c_str(), nullptr), value) << key;
  }
}

TEST(CSVLogger, FixesColumnsAtTheFirstEpochAndWritesNAForMissingValues) {
  TempDir tmp("csv");
  FakeTrainContext ctx;
  CSVLogger cb(tmp.path());
  cb.on_train_begin(ctx);
  Logs e0{{"loss", 1}, {"val_loss", 2}};
  Logs e1{{"loss", 0.5}, {"val_accuracy", 0.25}};  // val_loss missing, new key ignored
  cb.on_epoch_end(0, e0, ctx);
  cb.on_epoch_end(1, e1, ctx);
  EXPECT_EQ(read_file(cb.path()), "epoch,loss,val_loss\n0,1.0,2.0\n1,0.5,NA\n");
}

// Keras 3's CSVLogger: when the first epoch has no val_ key (a run without
// validation, or validation_freq > 1) it adds val_<key> for every key, after
// the sorted keys and in their order, and writes NA until validation comes.
TEST(CSVLogger, ARunWithoutValidationStillHasValColumnsFilledWithNA) {
  TempDir tmp("csv");
  FakeTrainContext ctx;
  CSVLogger cb(tmp.path());
  cb.on_train_begin(ctx);
  Logs e0{{"loss", 1.5}, {"accuracy", 0.25}, {"learning_rate", 0.001}};
  Logs e1{{"loss", 1.25}, {"accuracy", 0.5}, {"learning_rate", 0.0001}, {"val_loss", 1.0}};
  cb.on_epoch_end(0, e0, ctx);
  cb.on_epoch_end(1, e1, ctx);
  EXPECT_EQ(read_file(cb.path()),
            "epoch,accuracy,learning_rate,loss,val_accuracy,val_learning_rate,val_loss\n"
            "0,0.25,0.001,1.5,NA,NA,NA\n"
            "1,0.5,0.0001,1.25,NA,NA,1.0\n");
  EXPECT_EQ(cb.state()["columns"].size(), 6u);
}

TEST(CSVLogger, UsesTheGivenSeparator) {
  TempDir tmp("csv");
  FakeTrainContext ctx;
  CSVLogger cb(tmp.path(), ';');
  cb.on_train_begin(ctx);
  Logs logs{{"a;b", 1.5}, {"loss", 2}};
  cb.on_epoch_end(0, logs, ctx);
  EXPECT_EQ(read_file(cb.path()),
            "epoch;\"a;b\";loss;\"val_a;b\";val_loss\n0;1.5;2.0;NA;NA\n");
  EXPECT_THROW(CSVLogger(tmp.path(), '"'), UserError);
}

TEST(CSVLogger, NonWriterRankWritesNothing) {
  TempDir tmp("csv");
  FakeTrainContext ctx;
  ctx.writer = false;
  CSVLogger cb(tmp / "logs");
  cb.on_train_begin(ctx);
  testing::run_epochs(cb, ctx, 0, 0, 2);
  cb.on_train_end({}, ctx);
  EXPECT_FALSE(fs::exists(tmp / "logs"));
  EXPECT_TRUE(cb.path().empty());
}

std::string expected_rows(const std::vector<std::pair<int, int>>& epoch_and_run) {
  // Columns of testing::epoch_logs, sorted.
  std::string text =
      "epoch,accuracy,loss,lr,top3_accuracy,val_accuracy,val_loss,val_top3_accuracy\n";
  for (auto [epoch, run] : epoch_and_run) {
    const Logs l = testing::epoch_logs(run, epoch);
    text += std::to_string(epoch);
    for (const char* k : {"accuracy", "loss", "lr", "top3_accuracy", "val_accuracy", "val_loss",
                          "val_top3_accuracy"}) {
      text += "," + csv_number(l.at(k));
    }
    text += "\n";
  }
  return text;
}

TEST(CSVLogger, ResumeAppendsToTheSameFileWithoutASecondHeaderOrStaleRows) {
  TempDir tmp("csv");
  nlohmann::json saved;
  fs::path first_path;
  {
    FakeTrainContext ctx;
    CSVLogger cb(tmp / "logs");
    cb.on_train_begin(ctx);
    // Checkpoint after epoch 1; the run writes epoch 2 and dies.
    testing::run_epochs(cb, ctx, 1, 0, 3, [&](int epoch) {
      if (epoch == 1) saved = cb.state();
    });
    first_path = cb.path();
  }
  EXPECT_EQ(saved["file"], first_path.filename().string());
  EXPECT_EQ(saved["columns"].size(), 7u);
  // The killed run also left half a row.
  append_to_file(first_path, "3,0.5,0.");

  FakeTrainContext ctx;
  ctx.step = 8;
  CSVLogger cb(tmp / "logs");
  cb.load_state(saved);
  cb.on_train_begin(ctx);
  EXPECT_EQ(cb.path(), first_path);
  testing::run_epochs(cb, ctx, 2, 2, 4);
  cb.on_train_end({}, ctx);
  EXPECT_EQ(only_log_file(tmp / "logs"), first_path);
  EXPECT_EQ(read_file(first_path), expected_rows({{0, 1}, {1, 1}, {2, 2}, {3, 2}}));
}

TEST(CSVLogger, ResumeKeepsTheSavedColumnsEvenIfTheLogsChange) {
  TempDir tmp("csv");
  FakeTrainContext ctx;
  CSVLogger first(tmp.path());
  first.on_train_begin(ctx);
  Logs e0{{"loss", 1}, {"val_loss", 2}};
  first.on_epoch_end(0, e0, ctx);
  const auto saved = first.state();

  CSVLogger second(tmp.path());
  second.load_state(saved);
  second.on_train_begin(ctx);
  Logs e1{{"accuracy", 0.5}, {"val_loss", 1.5}};
  second.on_epoch_end(1, e1, ctx);
  EXPECT_EQ(read_file(first.path()), "epoch,loss,val_loss\n0,1.0,2.0\n1,NA,1.5\n");
}

TEST(CSVLogger, ResumeWritesTheHeaderWhenTheFileIsEmptyOrGone) {
  TempDir tmp("csv");
  FakeTrainContext ctx;
  // Checkpointed before the first epoch ended: a name but no columns yet.
  nlohmann::json saved;
  {
    CSVLogger cb(tmp.path());
    cb.on_train_begin(ctx);
    saved = cb.state();
  }
  ASSERT_TRUE(saved.contains("file"));
  ASSERT_FALSE(saved.contains("columns"));
  const fs::path path = tmp / saved["file"].get<std::string>();
  for (bool remove : {false, true}) {
    if (remove) {
      fs::remove(path);
    } else {
      testing::write_bytes(path, "");
    }
    CSVLogger cb(tmp.path());
    cb.load_state(saved);
    cb.on_train_begin(ctx);
    Logs logs{{"loss", 0.25}};
    cb.on_epoch_end(0, logs, ctx);
    EXPECT_EQ(read_file(path), "epoch,loss,val_loss\n0,0.25,NA\n") << (remove ? "removed" : "empty");
  }
}

TEST(CSVLogger, ResumeTakesColumnsFromTheHeaderWhenTheStateHasNone) {
  TempDir tmp("csv");
  const fs::path path = tmp / "training_log_20250101_000000.csv";
  // The killed run wrote epoch 0 after a checkpoint taken before any epoch.
  testing::write_bytes(path, "epoch,b,a\n0,1,2\n");
  FakeTrainContext ctx;
  CSVLogger cb(tmp.path());
  cb.load_state({{"file", path.filename().string()}});
  cb.on_train_begin(ctx);
  Logs logs{{"a", 5}, {"b", 6}};
  cb.on_epoch_end(0, logs, ctx);
  EXPECT_EQ(read_file(path), "epoch,b,a\n0,6.0,5.0\n");
}

TEST(CSVLogger, ResumeReplacesAHeaderCutShort) {
  TempDir tmp("csv");
  const fs::path path = tmp / "training_log_20250101_000000.csv";
  testing::write_bytes(path, "epoch,lo");
  FakeTrainContext ctx;
  CSVLogger cb(tmp.path());
  cb.load_state({{"file", path.filename().string()}, {"columns", {"loss"}}});
  cb.on_train_begin(ctx);
  Logs logs{{"loss", 0.5}};
  cb.on_epoch_end(0, logs, ctx);
  EXPECT_EQ(read_file(path), "epoch,loss\n0,0.5\n");  // the saved columns, not Keras' first-epoch rule
}

TEST(CSVLogger, RejectsMalformedState) {
  CSVLogger cb("unused");
  EXPECT_THROW(cb.load_state({{"columns", 3}}), UserError);
}

}  // namespace
}  // namespace cifar

namespace cifar {
namespace {

TEST(CSVLogger, ACheckpointCannotPointTheLogAtAnotherFile) {
  // The resumed logger trims and appends to logs/<file>: a hostile
  // checkpoint naming "../x" or an absolute path would rewrite that file.
  testing::TempDir tmp("csv");
  const fs::path victim = tmp / "victim.txt";
  testing::write_bytes(victim, "precious\n");
  for (const std::string name : {std::string("../victim.txt"), victim.string(), std::string("training_log_1/../../victim.csv"),
                                 std::string("training_log_.csv"), std::string("notes.csv")}) {
    CSVLogger cb(tmp / "logs");
    try {
      cb.load_state({{"file", name}});
      ADD_FAILURE() << "accepted " << name;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find("not a training_log_*.csv name"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(read_file(victim), "precious\n");
  // The name is quoted printably (found by fuzz/checkpoint_fuzz: it was quoted raw).
  try {
    CSVLogger(tmp / "logs").load_state({{"file", "training_log\x1b[2J.txt"}});
    ADD_FAILURE() << "accepted a name with an escape";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("names the log file 'training_log?[2J.txt'"), std::string::npos) << e.what();
  }
  CSVLogger ok(tmp / "logs");
  EXPECT_NO_THROW(ok.load_state({{"file", "training_log_20260101_000000_2.csv"}}));
}

}  // namespace
}  // namespace cifar
