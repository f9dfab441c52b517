// Precompiled header: the LibTorch headers dominate build time (tens of
// seconds per translation unit), so every target shares one compiled copy.
#pragma once
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>
