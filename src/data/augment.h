// Batch augmentation on the training device: the original system's random
// rotation, translation, zoom and horizontal flip as one affine grid per
// image and a single grid_sample call (reflect fill, as Keras' layers), plus
// optional random crop with padding and cutout. Every random draw comes from
// a generator seeded per step, so a run is a pure function of --seed and a
// resumed run draws exactly what the uninterrupted one would have.
#pragma once
#include <torch/torch.h>

#include "config/config.h"

namespace cifar {

class Augmenter {
 public:
  explicit Augmenter(AugmentConfig config) : config_(config) {}

  // x: float [B,C,H,W] on any device. Returns a new tensor of the same
  // shape. `flips` (bool [B]), when given, says which images to flip in
  // place of a random draw (--alternating-flip).
  torch::Tensor apply(const torch::Tensor& x, uint64_t seed, const torch::Tensor& flips = {}) const;

  bool geometric() const { return config_.rotation > 0 || config_.translation > 0 || config_.zoom > 0; }
  const AugmentConfig& config() const { return config_; }

 private:
  AugmentConfig config_;
};

// --alternating-flip: each of `images` training images' random first flip
// (from `seed`), as int64 0/1 on `device`; epoch e flips image i when
// first[i] xor (e % 2), so every image is seen both ways every two epochs
// (airbench's derandomised flip: chance shows some images one way twice
// running).
torch::Tensor first_flips(int64_t images, uint64_t seed, const torch::Device& device);
torch::Tensor alternating_flips(const torch::Tensor& first, const torch::Tensor& indices, int64_t epoch);

// A generator on `device` (the CPU's, or the GPU's, where the draws then
// need no copy from the host) seeded with `seed`.
at::Generator seeded_generator(const torch::Device& device, uint64_t seed);

// Flips the images whose mask entry is true (bool [B]); exact, no resampling.
torch::Tensor flip_where(const torch::Tensor& x, const torch::Tensor& mask);

// Shifts image b by (dy[b], dx[b]) pixels, filling with zeros; |d| <= pad.
torch::Tensor shift_images(const torch::Tensor& x, const torch::Tensor& dy, const torch::Tensor& dx, int64_t pad);

// A seed for step `step` of epoch `epoch` that no other (epoch, step) shares.
uint64_t step_seed(uint64_t seed, int64_t epoch, int64_t step, uint64_t stream = 0);

}  // namespace cifar
