// Where a new EfficientNet's weights come from (--pretrained-weights):
//   imagenet  torchvision's EfficientNet-B0 ImageNet weights, downloaded
//             once from --pretrained-url into the cache ($CIFAR10_CACHE,
//             default ~/.cache/cifar10) and read from there afterwards;
//   none      from scratch ("" as well: what every other model gets);
//   FILE      a .safetensors or .pth file, told apart by its bytes.
// torchvision names its files <arch>-<first 8+ hex digits of the file's
// SHA-256>.pth and torch.hub checks that prefix; so does this, on every
// run (21 MB hash in 0.04 s), so a damaged cache is caught too.
#pragma once
#include <filesystem>
#include <string>

#include "config/config.h"
#include "models/safetensors.h"

namespace cifar {

struct PretrainedWeights {
  TensorMap tensors;   // by torchvision name
  std::string file;    // the file read (for imagenet, the cached copy)
  std::string sha256;  // of its bytes, lowercase hex
  bool imagenet = false;
  std::string note;  // a line to print once (an unchecked download), or ""
};

// Whether `config` asks for pretrained weights (neither "" nor "none").
bool wants_pretrained(const ModelConfig& config);

// $CIFAR10_CACHE, else $HOME/.cache/cifar10.
std::filesystem::path weights_cache_dir();

// The cache file a URL's weights are kept in: the URL's last path segment,
// in weights_cache_dir().
std::filesystem::path cached_weights_file(const std::string& url);

// The weights `config` names, downloaded into the cache first when they are
// ImageNet's and not there yet, and checked against the model the flags
// build. Every failure is one UserError (exit 2): offline, a SHA-256 that
// does not match the file's name, an unreadable or malformed file, one that
// does not fit the model; for imagenet it names the URL, the cache file and
// --pretrained-weights none|FILE. Call only when wants_pretrained().
PretrainedWeights obtain_pretrained_weights(const ModelConfig& config);

// A .safetensors or .pth file's tensors; `source` names it in errors.
TensorMap decode_weights_file(std::string_view bytes, const std::string& source);

// "EfficientNet-B0 from ImageNet weights, F, sha256 H", "EfficientNet-B0
// from F, sha256 H" or "EfficientNet-B0 from scratch".
std::string describe_weights_origin(const PretrainedWeights* weights);

}  // namespace cifar
