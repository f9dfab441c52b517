#include "data/augment.h"

#include "data/batches.h"
#include "data/dataset.h"
#include "test_util.h"

namespace cifar {
namespace {

torch::Tensor real_batch(int64_t n = 32) {
  auto set = read_cifar_batch(testing::batches_dir() / "test_batch.bin");
  return normalize_images(set.images.slice(0, 0, n), make_normalization("standard"));
}

AugmentConfig none() {
  AugmentConfig c;
  c.rotation = c.translation = c.zoom = 0;
  c.flip = false;
  return c;
}

TEST(Augment, ShapeDtypeAndRange) {
  auto x = real_batch();
  auto y = Augmenter(AugmentConfig{}).apply(x, 1);
  EXPECT_EQ(y.sizes(), x.sizes());
  EXPECT_EQ(y.dtype(), torch::kFloat32);
  // Bilinear resampling with reflect fill never leaves the input's range.
  EXPECT_GE(y.min().item<float>(), x.min().item<float>() - 1e-5);
  EXPECT_LE(y.max().item<float>(), x.max().item<float>() + 1e-5);
  EXPECT_FALSE(torch::equal(x, y));
}

TEST(Augment, IdentityWhenAllMagnitudesAreZero) {
  auto x = real_batch();
  EXPECT_TRUE(torch::equal(Augmenter(none()).apply(x, 7), x));
}

TEST(Augment, FlipTwiceIsIdentity) {
  auto x = real_batch();
  auto mask = torch::rand({x.size(0)}) < 0.5;
  auto once = flip_where(x, mask);
  EXPECT_FALSE(torch::equal(once, x));
  EXPECT_TRUE(torch::equal(flip_where(once, mask), x));
}

TEST(Augment, FlipOnlyMirrorsExactly) {
  auto c = none();
  c.flip = true;
  auto x = real_batch();
  auto y = Augmenter(c).apply(x, 3);
  for (int64_t i = 0; i < x.size(0); ++i) {
    EXPECT_TRUE(torch::equal(y[i], x[i]) || torch::equal(y[i], x[i].flip({2}))) << i;
  }
}

TEST(Augment, SameSeedSameBatchOtherSeedOther) {
  auto x = real_batch();
  AugmentConfig c;
  c.crop_padding = 4;
  c.cutout = 8;
  Augmenter aug(c);
  EXPECT_TRUE(torch::equal(aug.apply(x, 42), aug.apply(x, 42)));
  EXPECT_FALSE(torch::equal(aug.apply(x, 42), aug.apply(x, 43)));
}

TEST(Augment, ShiftMovesPixelsAndZeroFills) {
  auto x = torch::arange(2 * 1 * 4 * 4, torch::kFloat32).view({2, 1, 4, 4});
  auto dy = torch::tensor({1, 0}, torch::kInt64), dx = torch::tensor({0, -1}, torch::kInt64);
  auto y = shift_images(x, dy, dx, 2);
  // Image 0 moved down one row: row 0 is fill, row 1 is the old row 0.
  EXPECT_TRUE(torch::equal(y[0][0][0], torch::zeros({4})));
  EXPECT_TRUE(torch::equal(y[0][0][1], x[0][0][0]));
  // Image 1 moved left one column: last column is fill.
  EXPECT_TRUE(torch::equal(y[1][0].select(1, 3), torch::zeros({4})));
  EXPECT_TRUE(torch::equal(y[1][0].select(1, 0), x[1][0].select(1, 1)));
}

TEST(Augment, CutoutZeroesASquare) {
  auto c = none();
  c.cutout = 8;
  auto x = torch::ones({16, 3, 32, 32});
  auto y = Augmenter(c).apply(x, 5);
  auto zeros_per_image = (y.select(1, 0) == 0).sum({1, 2});
  EXPECT_GT(zeros_per_image.min().item<int64_t>(), 0);
  EXPECT_LE(zeros_per_image.max().item<int64_t>(), 64);
}

// airbench's derandomised flip: each image starts flipped or not at
// random (by seed), then alternates every epoch.
TEST(Augment, AlternatingFlipsAlternateEachImageByEpoch) {
  const auto indices = torch::arange(1000, torch::kInt64);
  const auto first = first_flips(1000, 7, torch::kCPU);
  const auto e0 = alternating_flips(first, indices, 0);
  const auto e1 = alternating_flips(first, indices, 1);
  EXPECT_TRUE(torch::equal(e0, alternating_flips(first, indices, 2)));
  EXPECT_TRUE(torch::equal(e1, e0.logical_not()));
  const double share = e0.to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(share, 0.4);
  EXPECT_LT(share, 0.6);
  EXPECT_TRUE(torch::equal(first, first_flips(1000, 7, torch::kCPU)));
  EXPECT_FALSE(torch::equal(first, first_flips(1000, 8, torch::kCPU)));
  // A batch's flips are those of its images, wherever they fall.
  const auto some = torch::tensor({5, 999, 0}, torch::kInt64);
  EXPECT_TRUE(torch::equal(alternating_flips(first, some, 1), e1.index_select(0, some)));
}

TEST(Batches, EverySampleOncePerEpochAcrossRanks) {
  for (int world : {1, 2, 3}) {
    const int64_t n = 1001, batch = 64;
    auto order = epoch_order(n, 9, 2);
    std::vector<int> seen(n, 0);
    for (int64_t step = 0; step < steps_per_epoch(n, batch); ++step) {
      for (int r = 0; r < world; ++r) {
        auto idx = rank_batch(order, step, batch, r, world);
        for (int64_t i = 0; i < idx.size(0); ++i) seen[idx[i].item<int64_t>()]++;
      }
    }
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[i], 1) << "world " << world << " sample " << i;
  }
}

TEST(Batches, OrderDependsOnSeedAndEpoch) {
  EXPECT_TRUE(torch::equal(epoch_order(100, 1, 0), epoch_order(100, 1, 0)));
  EXPECT_FALSE(torch::equal(epoch_order(100, 1, 0), epoch_order(100, 1, 1)));
  EXPECT_FALSE(torch::equal(epoch_order(100, 1, 0), epoch_order(100, 2, 0)));
}

TEST(Splits, ValidationIsHeldOutBySeed) {
  auto data = read_cifar10(testing::batches_dir());
  DataConfig c;
  auto s = make_splits(data, c, 42);
  EXPECT_EQ(s.train.size(), 45000);
  EXPECT_EQ(s.val.size(), 5000);
  EXPECT_EQ(s.test.size(), 10000);
  auto again = make_splits(data, c, 42);
  EXPECT_TRUE(torch::equal(s.val.labels, again.val.labels));
  auto other = make_splits(data, c, 43);
  EXPECT_FALSE(torch::equal(s.val.labels, other.val.labels));
}

}  // namespace
}  // namespace cifar
