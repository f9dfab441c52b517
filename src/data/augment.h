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

  // x: float [B,C,H,W] on any device. Returns a new tensor of the same shape.
  torch::Tensor apply(const torch::Tensor& x, uint64_t seed) const;

  bool geometric() const { return config_.rotation > 0 || config_.translation > 0 || config_.zoom > 0; }
  const AugmentConfig& config() const { return config_; }

 private:
  AugmentConfig config_;
};

// Flips the images whose mask entry is true (bool [B]); exact, no resampling.
torch::Tensor flip_where(const torch::Tensor& x, const torch::Tensor& mask);

// Shifts image b by (dy[b], dx[b]) pixels, filling with zeros; |d| <= pad.
torch::Tensor shift_images(const torch::Tensor& x, const torch::Tensor& dy, const torch::Tensor& dx, int64_t pad);

// A seed for step `step` of epoch `epoch` that no other (epoch, step) shares.
uint64_t step_seed(uint64_t seed, int64_t epoch, int64_t step, uint64_t stream = 0);

}  // namespace cifar
