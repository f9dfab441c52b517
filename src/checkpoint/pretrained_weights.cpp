#include "checkpoint/pretrained_weights.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <iostream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/printable.h"
#include "common/signals.h"
#include "data/archive.h"
#include "data/cifar_reader.h"
#include "data/url_download.h"
#include "models/efficientnet.h"
#include "models/registry.h"
#include "checkpoint/pth_reader.h"

namespace cifar {
namespace fs = std::filesystem;

namespace {

constexpr size_t kMinHashDigits = 8;  // torchvision's names carry 8 to 10

// The URL's last path segment, without query or fragment.
std::string url_file_name(const std::string& url) {
  std::string path = url.substr(0, url.find_first_of("?#"));
  return path.substr(path.find_last_of('/') + 1);
}

// The SHA-256 prefix in a torchvision file name: "-<hex>." with 8 or more
// lowercase hex digits (torch.hub's HASH_REGEX, "-([a-f0-9]*)\.", with a
// minimum length so that "resnet-18.pth" is not a prefix "18").
std::string hash_prefix(const std::string& name) {
  for (size_t dash = name.find('-'); dash != std::string::npos; dash = name.find('-', dash + 1)) {
    size_t end = dash + 1;
    while (end < name.size() &&
           (std::isdigit(static_cast<unsigned char>(name[end])) || (name[end] >= 'a' && name[end] <= 'f'))) {
      ++end;
    }
    if (end < name.size() && name[end] == '.' && end - dash - 1 >= kMinHashDigits) {
      return name.substr(dash + 1, end - dash - 1);
    }
  }
  return "";
}

// The one hint every ImageNet failure ends with.
std::string imagenet_hint(const fs::path& cached) {
  return "offline? copy the file to " + cached.string() +
         " (or set CIFAR10_CACHE), or pass --pretrained-weights none (from scratch) or --pretrained-weights FILE "
         "(.pth or .safetensors)";
}

std::string read_and_hash(const fs::path& file, std::string& sha256) {
  std::string bytes = read_file(file);
  sha256 = sha256_hex(bytes);
  return bytes;
}

// Downloads `url` into the cache folder and moves it into place once its
// SHA-256 matches the name's prefix; a failed download leaves nothing.
std::string download_into_cache(const std::string& url, const fs::path& cached, const std::string& prefix,
                                std::string& sha256) {
  const std::string hint = imagenet_hint(cached);
  DownloadHints hints;
  hints.offline = hint;
  hints.bad_url = "check --pretrained-url; or " + hint;
  hints.folder = "set CIFAR10_CACHE to a writable folder, or pass --pretrained-weights none|FILE";
  NewFolders made(cached.parent_path());
  std::error_code ec;
  fs::create_directories(cached.parent_path(), ec);
  if (ec) {
    throw UserError("cannot create the weights cache " + cached.parent_path().string() + ": " + ec.message() +
                    " (hint: " + hints.folder + ")");
  }
  std::cerr << "EfficientNet-B0 ImageNet weights are not in the cache: downloading them into " << cached.string()
            << "\n";
  // Ctrl-C while downloading removes the partial file (as for the data).
  StopSignalsCaught caught;
  TempDownload download(url, cached.parent_path(), ".weights-download-", hints);
  std::string bytes = read_and_hash(download.path(), sha256);
  if (!prefix.empty() && sha256.rfind(prefix, 0) != 0) {
    throw UserError("checksum mismatch: " + url + " has SHA-256 " + sha256 + ", but its name says " + prefix +
                    "...; nothing was written to " + cached.string() +
                    " (hint: the server or a proxy sent another "
                    "file; " +
                    hint + ")");
  }
  download.keep_as(cached);
  made.keep();
  return bytes;
}

}  // namespace

bool wants_pretrained(const ModelConfig& config) {
  return !config.pretrained_weights.empty() && config.pretrained_weights != "none";
}

fs::path weights_cache_dir() {
  if (const char* env = std::getenv("CIFAR10_CACHE"); env && *env) return env;
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : ".") / ".cache" / "cifar10";
}

fs::path cached_weights_file(const std::string& url) {
  const std::string name = url_file_name(url);
  const bool safe = !name.empty() && name != "." && name != ".." && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '+';
  });
  check_input(safe,
              "--pretrained-url " + printable(url, 200) + " names no file to cache (its last part is '" +
                  printable(name, 80) + "')",
              "give the URL of the weight file itself, such as https://host/efficientnet_b0-3dd342df.pth");
  return weights_cache_dir() / name;
}

TensorMap decode_weights_file(std::string_view bytes, const std::string& source) {
  if (is_zip(bytes)) return decode_pth(bytes, source);
  // safetensors: an 8-byte header length, then the JSON header's '{'.
  if (bytes.size() > 8 && bytes[8] == '{') return decode_safetensors(bytes, source);
  const std::string ext = fs::path(source).extension().string();
  if (ext == ".pth" || ext == ".pt" || ext == ".bin") return decode_pth(bytes, source);  // says what it is not
  throw UserError("weights file " + source +
                  " is neither .safetensors nor a PyTorch .pth file (hint: pass the file "
                  "torchvision's weights were saved in, or --pretrained-weights imagenet)");
}

PretrainedWeights obtain_pretrained_weights(const ModelConfig& config) {
  PretrainedWeights weights;
  std::string bytes;
  if (config.pretrained_weights == "imagenet") {
    const std::string& url = config.pretrained_url;
    const fs::path cached = cached_weights_file(url);
    const std::string name = cached.filename().string();
    const std::string prefix = hash_prefix(name);
    weights.imagenet = true;
    weights.file = cached.string();
    std::error_code ec;
    if (fs::exists(cached, ec)) {
      bytes = read_and_hash(cached, weights.sha256);
      if (!prefix.empty() && weights.sha256.rfind(prefix, 0) != 0) {
        throw UserError("checksum mismatch: the cached " + cached.string() + " has SHA-256 " + weights.sha256 +
                        ", but its name says " + prefix + "... (hint: delete it to download it again from " + url +
                        "; or " + imagenet_hint(cached) + ")");
      }
    } else {
      bytes = download_into_cache(url, cached, prefix, weights.sha256);
    }
    if (prefix.empty()) {
      weights.note = "note: " + name +
                     " carries no SHA-256 prefix in its name (torchvision names its files "
                     "<arch>-<first 8+ hex digits of the SHA-256>.pth), so nothing checked it; its SHA-256 is " +
                     weights.sha256;
    }
  } else {
    weights.file = config.pretrained_weights;
    const std::string why = unreadable_reason(weights.file);
    if (!why.empty()) throw UserError("cannot read --pretrained-weights " + weights.file + ": " + why);
    bytes = read_and_hash(weights.file, weights.sha256);
  }
  weights.tensors = decode_weights_file(bytes, weights.file);
  // Into a throwaway model of the flags' shape, so a file that does not fit
  // is refused now, before the data is read (or downloaded: 163 MB), not
  // after. Building it costs about 0.1 s.
  const ModelSpec spec = make_spec(config, std::vector<std::string>(kNumClasses, "class"), {0, 0, 0}, {1, 1, 1});
  load_pretrained(*build_model(spec), spec, weights.tensors, weights.file);
  return weights;
}

std::string describe_weights_origin(const PretrainedWeights* weights) {
  if (!weights) return "EfficientNet-B0 from scratch";
  return std::string("EfficientNet-B0 from ") + (weights->imagenet ? "ImageNet weights, " : "") + weights->file +
         ", sha256 " + weights->sha256;
}

}  // namespace cifar
