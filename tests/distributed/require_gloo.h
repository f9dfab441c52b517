// Tests that form a Gloo group skip where LibTorch has none: the CUDA
// wheels ship without Gloo's headers (on GPUs NCCL replaces it). They run on
// the CPU build that CI uses.
#pragma once
#include <gtest/gtest.h>

#include "distributed/process_group.h"

#define SKIP_WITHOUT_GLOO() \
  if (!::cifar::has_backend("gloo")) GTEST_SKIP() << "this LibTorch build has no Gloo process group"
