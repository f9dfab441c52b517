#include "evaluation/predict.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_text.h"
#include "common/printable.h"
#include "common/runtime.h"
#include "evaluation/evaluate.h"
#include "data/image_io.h"
#include "metrics/eval_metrics.h"
#include "checkpoint/checkpoint.h"

namespace cifar {
namespace fs = std::filesystem;
namespace {

// Whether the checkpoint's run evaluated with test-time augmentation.
bool run_used_tta(const nlohmann::json& meta) {
  const auto config = meta.find("config");
  if (config == meta.end() || !config->is_object()) return false;
  const auto tta = config->find("tta");
  return tta != config->end() && tta->is_boolean() && tta->get<bool>();
}

// Files decoded and classified together: 256 RGB 32x32 images are 0.8 MB,
// and a folder of large photos holds at most 256 decoded originals at once.
constexpr size_t kFilesPerChunk = 256;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return s;
}

bool is_image_name(const fs::path& p) {
  const auto ext = lower(p.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

enum class OutputFormat { kNone, kJson, kCsv };

OutputFormat output_format(const std::string& output) {
  if (output.empty()) return OutputFormat::kNone;
  const auto ext = lower(fs::path(output).extension().string());
  if (ext == ".json") return OutputFormat::kJson;
  if (ext == ".csv") return OutputFormat::kCsv;
  throw UserError("--output " + output + ": unknown file type '" + ext +
                  "' (hint: name it FILE.json or FILE.csv)");
}


std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

std::string fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

struct FileResult {
  std::string file;
  std::vector<std::pair<std::string, double>> top;  // empty when it failed
  std::string error;
};

void write_output(const std::string& output, OutputFormat format, const std::vector<FileResult>& results) {
  if (format == OutputFormat::kJson) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& r : results) {
      if (!r.error.empty()) {
        j.push_back({{"file", r.file}, {"error", r.error}});
        continue;
      }
      nlohmann::json preds = nlohmann::json::array();
      for (const auto& [name, p] : r.top) preds.push_back({{"class", name}, {"confidence", p}});
      j.push_back({{"file", r.file}, {"predictions", std::move(preds)}});
    }
    write_file_atomic(output, json_text(j, 2) + "\n");
  } else if (format == OutputFormat::kCsv) {
    // A failed file keeps its row, as in the JSON: a table that silently
    // lacks some inputs reads as if they had been classified elsewhere.
    std::string csv = "file,rank,class,confidence,error\n";
    for (const auto& r : results) {
      if (!r.error.empty()) csv += csv_field(r.file) + ",,,," + csv_field(r.error) + "\n";
      for (size_t i = 0; i < r.top.size(); ++i) {
        csv += csv_field(r.file) + "," + std::to_string(i + 1) + "," + csv_field(r.top[i].first) + "," +
               fixed(r.top[i].second, 6) + ",\n";
      }
    }
    write_file_atomic(output, csv);
  }
}

}  // namespace

ImageInputs expand_image_inputs(const std::vector<std::string>& inputs) {
  ImageInputs out;
  for (const auto& input : inputs) {
    const fs::path path(input);
    std::error_code ec;
    if (!fs::is_directory(path, ec)) {
      out.files.push_back(path);  // missing files fail, with their name, when decoded
      continue;
    }
    std::vector<fs::path> found;
    size_t skipped = 0;
    fs::directory_iterator it(path, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      std::error_code file_ec;
      if (it->is_regular_file(file_ec) && is_image_name(it->path())) {
        found.push_back(it->path());
      } else {
        ++skipped;
      }
    }
    if (!ec && skipped > 0) {
      out.notes.push_back(input + ": skipped " + std::to_string(skipped) + " entr" + (skipped == 1 ? "y" : "ies") +
                          " that " + (skipped == 1 ? "is" : "are") +
                          " not a .png, .jpg, .jpeg or .bmp file (subfolders are not searched)");
    }
    if (ec) {
      out.errors.push_back({input, input + ": cannot list folder: " + ec.message()});
    } else if (found.empty()) {
      out.errors.push_back({input, input + ": folder holds no .png, .jpg, .jpeg or .bmp file"});
    }
    std::sort(found.begin(), found.end());
    out.files.insert(out.files.end(), found.begin(), found.end());
  }
  return out;
}

int run_predict(const PredictOptions& options, std::ostream& out, std::ostream& err) {
  const OutputFormat format = output_format(options.output);  // before any work
  // Written last, after every image: a folder it cannot go into is said
  // now, not after minutes of classifying.
  if (format != OutputFormat::kNone) check_writable_target(options.output, "--output");
  if (options.top_k < 1) throw UserError("--top-k " + std::to_string(options.top_k) + ": must be 1 or more");
  configure_threads(options.threads);
  const torch::Device device = resolve_device(options.device);
  const auto loaded = load_model(options.load_model, device);
  const auto& spec = loaded.spec;
  const Normalization norm{spec.mean, spec.std};
  // Images go in at CIFAR's 32x32, like the training data: models with a
  // larger input_size upsample inside forward().
  const int64_t side = kImageSide;
  EvalOptions eval;
  eval.device = device;
  eval.batch_size = static_cast<int64_t>(kFilesPerChunk);
  eval.tta = options.tta.value_or(run_used_tta(loaded.meta));
  // The confidences the run calibrated (1 for a checkpoint without).
  eval.temperature = spec.temperature;
  // Said once, on the error stream (stdout keeps one line per file): the
  // figures change with it.
  if (eval.tta && !options.tta) {
    err << "note: averaging over flips and shifts (TTA), as " << printable(options.load_model)
        << "'s run evaluated (--no-tta classifies each image alone)\n";
  }

  const auto inputs = expand_image_inputs(options.inputs);
  // Bad inputs (missing, empty, corrupt, unsupported files; empty folders)
  // exit 2 as bad flags do; a failure of our own (out of memory) exits 1
  // and wins, as it says the run itself is in doubt.
  bool bad_input = false, runtime_failure = false;
  std::vector<FileResult> results;
  for (const auto& note : inputs.notes) err << "note: " << printable(note) << "\n";
  for (const auto& e : inputs.errors) {
    err << "error: " << printable(e.message) << "\n";
    bad_input = true;
    results.push_back({e.input, {}, printable(e.message)});
  }
  for (size_t begin = 0; begin < inputs.files.size(); begin += kFilesPerChunk) {
    const size_t end = std::min(inputs.files.size(), begin + kFilesPerChunk);
    std::vector<torch::Tensor> images;
    std::vector<size_t> decoded;  // indices into results of the files in `images`
    for (size_t i = begin; i < end; ++i) {
      FileResult r;
      r.file = inputs.files[i].string();
      try {
        images.push_back(square_image(decode_image_file(inputs.files[i]), side, options.resize));
        decoded.push_back(results.size());
      } catch (const std::exception& e) {
        // UserError already names the file; anything else (out of memory) does not.
        const auto* user = dynamic_cast<const UserError*>(&e);
        r.error = printable(user ? e.what() : r.file + ": " + e.what());
        err << "error: " << r.error << "\n";
        (user && user->exit_code() == kExitBadInput ? bad_input : runtime_failure) = true;
      }
      results.push_back(std::move(r));
    }
    if (images.empty()) continue;
    auto logits = predict_logits(*loaded.model, torch::stack(images), norm, eval);
    check_finite_logits(logits);
    logits = logits / eval.temperature;
    const auto top = top_k_predictions(logits, options.top_k);
    // Print in input order: lines of failed files were already written to err.
    for (size_t row = 0; row < decoded.size(); ++row) {
      auto& r = results[decoded[row]];
      for (int64_t j = 0; j < top.indices.size(1); ++j) {
        r.top.emplace_back(spec.class_names.at(top.indices[row][j].item<int64_t>()),
                           top.probs[row][j].item<double>());
      }
    }
    for (size_t i = results.size() - (end - begin); i < results.size(); ++i) {
      const auto& r = results[i];
      if (!r.error.empty()) continue;
      // printable(): a file name holding a line break would forge a line.
      out << printable(r.file) << ":";
      for (size_t j = 0; j < r.top.size(); ++j) {
        out << (j ? ", " : " ") << printable(r.top[j].first) << " " << fixed(r.top[j].second, 3);
      }
      out << "\n";
    }
  }
  out.flush();
  write_output(options.output, format, results);
  return runtime_failure ? kExitRuntime : bad_input ? kExitBadInput : 0;
}

}  // namespace cifar
