// The three splits a run uses: train and validation carved from the 50,000
// training images by a seeded permutation, and the untouched test set.
#pragma once
#include "config/config.h"
#include "data/cifar_reader.h"

namespace cifar {

struct Normalization {
  std::vector<double> mean{0, 0, 0};
  std::vector<double> std{1, 1, 1};
};

// Per-channel statistics of the CIFAR-10 training set ("standard"), or the
// identity on [0,1] ("unit"), as the original's Rescaling(1/255).
Normalization make_normalization(const std::string& kind);

struct Splits {
  ImageSet train;
  ImageSet val;
  ImageSet test;
  std::vector<std::string> class_names;
};

// Holds out `validation_size` images chosen by `seed`, then applies the
// train/test limits (prefixes: the files are class-balanced shuffles).
Splits make_splits(const Cifar10& data, const DataConfig& config, uint64_t seed);

// uint8 [N,3,H,W] on any device -> `dtype` (a model's weight type), scaled
// to [0,1] and normalised.
torch::Tensor normalize_images(const torch::Tensor& images_u8, const Normalization& norm,
                               torch::ScalarType dtype = torch::kFloat32);

}  // namespace cifar
