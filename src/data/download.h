// Getting CIFAR-10 onto disk: reuse a folder that is already there, else
// unpack a local archive or download the official one, check its MD5,
// extract it safely and validate it, then move it into place in one rename,
// so a failure or an interrupted run never leaves a half-made dataset.
#pragma once
#include <filesystem>

#include "config/config.h"
#include "data/archive.h"

namespace cifar {

// The folder name the official archive unpacks to.
constexpr const char* kBatchesFolder = "cifar-10-batches-bin";

// Returns the folder holding the seven CIFAR-10 files (cifar10_files()):
//  1. data_dir/cifar-10-batches-bin/, or data_dir itself, if it holds them
//     all; a folder holding only some throws, naming what is missing;
//  2. else the archive `data_archive`, or `data_url` downloaded into a
//     temporary file in data_dir (removed afterwards);
//  3. whose MD5 must equal `data_md5` (unless "none");
//  4. extracted into data_dir/.cifar-extract-XXXXXX, validated with the
//     reader, and renamed to data_dir/cifar-10-batches-bin/.
// Every failure is a one-line UserError (exit code 2) and leaves data_dir as
// it was. With `test_only` (an evaluation), a folder holding the test batch
// and the class names is enough in step 1.
std::filesystem::path obtain_cifar10(const DataConfig& config, bool test_only = false);

// The same with explicit size caps, so tests can refuse a small "bomb".
std::filesystem::path obtain_cifar10(const DataConfig& config, const ExtractLimits& limits, bool test_only = false);

}  // namespace cifar
