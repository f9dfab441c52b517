#include "data/cifar_reader.h"

#include "common/atomic_file.h"
#include "common/error.h"
#include "test_util.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;
using testing::write_bytes;

TEST(CifarReader, RealDataHasFiftyThousandTrainAndTenThousandTest) {
  auto data = read_cifar10(testing::batches_dir());
  ASSERT_EQ(data.train.size(), 50000);
  ASSERT_EQ(data.test.size(), 10000);
  EXPECT_EQ(data.train.images.sizes(), (std::vector<int64_t>{50000, 3, 32, 32}));
  EXPECT_EQ(data.train.images.dtype(), torch::kUInt8);
  auto train_counts = torch::bincount(data.train.labels, {}, 10);
  auto test_counts = torch::bincount(data.test.labels, {}, 10);
  for (int c = 0; c < 10; ++c) {
    EXPECT_EQ(train_counts[c].item<int64_t>(), 5000) << "class " << c;
    EXPECT_EQ(test_counts[c].item<int64_t>(), 1000) << "class " << c;
  }
  EXPECT_EQ(data.class_names.front(), "airplane");
  EXPECT_EQ(data.class_names.back(), "truck");
}

// Copies the real folder so each corruption case damages only its copy.
fs::path copy_of_real(const TempDir& tmp) {
  auto dst = tmp / "cifar-10-batches-bin";
  fs::create_directories(dst);
  for (const auto& name : cifar10_files()) {
    if (name == "batches.meta.txt" || name == "test_batch.bin") {
      fs::copy_file(testing::batches_dir() / name, dst / name);
    } else {
      // A one-record stand-in keeps the copy small; sizes stay valid.
      write_bytes(dst / name, std::string(kRecordBytes, '\0'));
    }
  }
  return dst;
}

std::string error_of(const fs::path& dir) {
  try {
    read_cifar10(dir);
  } catch (const UserError& e) {
    EXPECT_EQ(e.exit_code(), 2);
    return e.what();
  }
  return "";
}

TEST(CifarReader, MissingFileIsNamed) {
  TempDir tmp("reader");
  auto dir = copy_of_real(tmp);
  fs::remove(dir / "data_batch_3.bin");
  auto err = error_of(dir);
  EXPECT_NE(err.find("missing CIFAR-10 file"), std::string::npos) << err;
  EXPECT_NE(err.find("data_batch_3.bin"), std::string::npos) << err;
}

TEST(CifarReader, TruncatedFileIsNamed) {
  TempDir tmp("reader");
  auto dir = copy_of_real(tmp);
  write_bytes(dir / "data_batch_2.bin", std::string(kRecordBytes * 2 - 100, '\0'));
  auto err = error_of(dir);
  EXPECT_NE(err.find("truncated or corrupt"), std::string::npos) << err;
  EXPECT_NE(err.find("data_batch_2.bin"), std::string::npos) << err;
  EXPECT_NE(err.find("6046 bytes"), std::string::npos) << err;
}

TEST(CifarReader, EmptyFileIsNamed) {
  TempDir tmp("reader");
  auto dir = copy_of_real(tmp);
  write_bytes(dir / "data_batch_5.bin", "");
  auto err = error_of(dir);
  EXPECT_NE(err.find("empty CIFAR-10 file"), std::string::npos) << err;
}

TEST(CifarReader, BadLabelNamesRecord) {
  TempDir tmp("reader");
  auto dir = copy_of_real(tmp);
  std::string two(kRecordBytes * 2, '\0');
  two[kRecordBytes] = 12;  // second record's label
  write_bytes(dir / "data_batch_1.bin", two);
  auto err = error_of(dir);
  EXPECT_NE(err.find("record 1 has label 12"), std::string::npos) << err;
  EXPECT_NE(err.find("data_batch_1.bin"), std::string::npos) << err;
}

TEST(CifarReader, WrongClassNameCountIsNamed) {
  TempDir tmp("reader");
  auto dir = copy_of_real(tmp);
  write_bytes(dir / "batches.meta.txt", "airplane\nautomobile\n");
  auto err = error_of(dir);
  EXPECT_NE(err.find("expected 10 class names, found 2"), std::string::npos) << err;
}

TEST(CifarReader, RecordLayoutIsLabelThenPlanarRgb) {
  TempDir tmp("reader");
  std::string rec(kRecordBytes, '\0');
  rec[0] = 7;
  rec[1] = 10;              // R(0,0)
  rec[1 + 1024] = 20;       // G(0,0)
  rec[1 + 2048 + 33] = 30;  // B(1,1)
  write_bytes(tmp / "one.bin", rec);
  auto set = read_cifar_batch(tmp / "one.bin");
  ASSERT_EQ(set.size(), 1);
  EXPECT_EQ(set.labels[0].item<int64_t>(), 7);
  EXPECT_EQ(set.images[0][0][0][0].item<uint8_t>(), 10);
  EXPECT_EQ(set.images[0][1][0][0].item<uint8_t>(), 20);
  EXPECT_EQ(set.images[0][2][1][1].item<uint8_t>(), 30);
}

}  // namespace
}  // namespace cifar

namespace cifar {
namespace {

// The in-memory entry point (what the fuzz target drives) applies the same
// checks as the file reader and gives the same tensors.
TEST(CifarReader, BytesParseAsTheFileReads) {
  const auto file = testing::batches_dir() / "test_batch.bin";
  const std::string bytes = read_file(file);
  const auto from_bytes = parse_cifar_batch(std::string_view(bytes).substr(0, 5 * kRecordBytes), "five.bin");
  const auto from_file = read_cifar_batch(file).slice(0, 5);
  EXPECT_TRUE(torch::equal(from_bytes.images, from_file.images));
  EXPECT_TRUE(torch::equal(from_bytes.labels, from_file.labels));
  auto message = [](std::string_view b) {
    try {
      parse_cifar_batch(b, "mem.bin");
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(message("").find("empty CIFAR-10 file mem.bin"), std::string::npos);
  EXPECT_NE(message(std::string_view(bytes).substr(0, 3074)).find("3074 bytes is not a whole number"), std::string::npos);
  std::string bad_label(bytes.substr(0, kRecordBytes));
  bad_label[0] = 10;
  EXPECT_NE(message(bad_label).find("record 0 has label 10"), std::string::npos);
  EXPECT_EQ(parse_class_names("a\nb\r\nc\nd\ne\nf\ng\nh\ni\nj \n\n", "meta").size(), 10u);
  EXPECT_THROW(parse_class_names("a\nb\n", "meta"), UserError);
}

}  // namespace
}  // namespace cifar
