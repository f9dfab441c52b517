#include "reporting/html_report.h"

#include "reporting/format.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <iomanip>
#include <locale>
#include <sstream>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"

namespace cifar {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Arrays longer than this are summarised ("[10000 values]") in the tables:
// a page listing every prediction would bury the numbers that matter.
constexpr size_t kMaxListedValues = 20;

// Plots under these stems come first, in pipeline order, with a caption.
struct KnownPlot {
  const char* stem;
  const char* caption;
};
constexpr KnownPlot kKnownPlots[] = {
    {"training_history", "Training history: loss, accuracy and learning rate per epoch"},
    {"confusion_matrix", "Confusion matrix on the test set (rows: true class)"},
    {"class_accuracy", "Per-class accuracy on the test set"},
    {"confidence_distribution", "Confidence of correct and wrong predictions"},
    {"reliability_diagram", "Calibration: accuracy per confidence bin"},
    {"prediction_samples", "Sample test predictions (wrong ones in red)"},
};

const char* const kStyle = R"(
body { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; }
.meta { color: #666; margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: 1em; margin: 1.5em 0; }
.card { border: 1px solid #ddd; border-radius: 8px; padding: 0.8em 1.2em; min-width: 9em; background: #fafafa; }
.card .label { color: #666; font-size: 0.9em; }
.card .value { font-size: 1.6em; font-weight: 600; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.7em; text-align: left; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; margin-top: 0.4em; }
)";

std::string format_double(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "n/a" : (v > 0 ? "inf" : "-inf");
  std::ostringstream o;
  o.imbue(std::locale::classic());
  o << std::setprecision(6) << v;
  return o.str();
}


// Plain text of a scalar (not yet escaped).
std::string scalar_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return v.dump();
  if (v.is_number()) return format_double(v.get<double>());
  if (v.is_null()) return "null";
  if (v.is_array()) {
    bool scalars = true;
    for (const auto& e : v) scalars = scalars && !e.is_structured();
    if (!scalars) return "[" + std::to_string(v.size()) + " entries]";
    if (v.size() > kMaxListedValues) return "[" + std::to_string(v.size()) + " values]";
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + scalar_text(v[i]);
    return s + "]";
  }
  return "{" + std::to_string(v.size()) + " entries}";
}

// Fractions shown as percentages; values already above 1 are taken to be
// percentages.
std::string percent_text(const json& v) {
  if (!v.is_number()) return scalar_text(v);
  const double d = v.get<double>();
  if (!std::isfinite(d)) return format_double(d);
  return format_fixed(d <= 1.0 ? d * 100 : d, 2) + "%";
}

std::string duration_text(const json& v) {
  if (!v.is_number()) return scalar_text(v);
  const double s = v.get<double>();
  if (!std::isfinite(s) || s < 0) return format_double(s);
  const auto total = static_cast<int64_t>(std::llround(s));
  const int64_t h = total / 3600, m = total % 3600 / 60, sec = total % 60;
  std::ostringstream o;
  if (h) o << h << " h " << std::setw(2) << std::setfill('0') << m << " min";
  else if (m) o << m << " min " << std::setw(2) << std::setfill('0') << sec << " s";
  else o << format_fixed(s, 1) << " s";
  return o.str();
}

const json* member(const json* obj, const char* key) {
  if (!obj || !obj->is_object()) return nullptr;
  auto it = obj->find(key);
  return it == obj->end() || it->is_null() ? nullptr : &*it;
}

// The first of `keys` present in any of `objects`, searched in order.
const json* find_first(const std::vector<const json*>& objects, std::initializer_list<const char*> keys) {
  for (const json* obj : objects) {
    for (const char* k : keys) {
      if (const json* v = member(obj, k)) return v;
    }
  }
  return nullptr;
}

// "a.b.c" -> scalar rows, skipping `skip` at the top level.
void flatten(const json& obj, const std::string& prefix, const std::vector<std::string>& skip,
             std::vector<std::pair<std::string, std::string>>& rows) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (prefix.empty() && std::find(skip.begin(), skip.end(), it.key()) != skip.end()) continue;
    const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (it->is_object() && !it->empty()) {
      flatten(*it, key, {}, rows);
    } else {
      rows.emplace_back(key, scalar_text(*it));
    }
  }
}

bool looks_numeric(const std::string& s) {
  if (s.empty()) return false;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end && *end == '\0';
}

void key_value_table(std::ostringstream& out, const std::vector<std::pair<std::string, std::string>>& rows) {
  if (rows.empty()) return;
  out << "<table>\n";
  for (const auto& [k, v] : rows) {
    out << "<tr><th>" << html_escape(k) << "</th><td" << (looks_numeric(v) ? " class=\"num\"" : "")
        << ">" << html_escape(v) << "</td></tr>\n";
  }
  out << "</table>\n";
}

void card(std::ostringstream& out, const std::string& label, const std::string& value) {
  out << "<div class=\"card\"><div class=\"label\">" << html_escape(label)
      << "</div><div class=\"value\">" << html_escape(value) << "</div></div>\n";
}

void headline(std::ostringstream& out, const json* training, const json* inference, const json* config) {
  const json* metrics = member(inference, "metrics");
  const json* overall = member(inference, "overall");
  // training_summary.json repeats the test numbers under "test", which is
  // all there is when inference_results.json is not part of the page.
  const std::vector<const json*> test_sources = {inference, metrics, overall, member(training, "test"), training};
  std::ostringstream cards;
  if (const json* v = find_first(test_sources, {"test_accuracy", "accuracy", "top1_accuracy"})) {
    card(cards, "Test accuracy", percent_text(*v));
  }
  if (const json* v = find_first(test_sources, {"test_top3_accuracy", "top3_accuracy",
                                                "top_3_accuracy", "test_top_3_accuracy"})) {
    card(cards, "Top-3 accuracy", percent_text(*v));
  }
  if (const json* v = find_first(test_sources, {"test_loss", "loss"})) {
    card(cards, "Test loss", v->is_number() ? format_fixed(v->get<double>(), 4) : scalar_text(*v));
  }
  // The pipeline writes ECE as inference_results.json's calibration.ece.
  const json* calibration = member(inference, "calibration");
  if (const json* v = find_first({calibration, inference, metrics, overall, training},
                                 {"ece", "expected_calibration_error"})) {
    card(cards, "ECE", v->is_number() ? format_fixed(v->get<double>(), 4) : scalar_text(*v));
  }
  const json* model = find_first({training, config}, {"model", "model_type", "model_name", "architecture"});
  if (model && model->is_object()) model = find_first({model}, {"type", "name"});
  if (model) card(cards, "Model", scalar_text(*model));
  // training_summary.json's keys first (src/pipeline/pipeline.cpp's
  // train_stage), then other spellings of the same numbers.
  if (const json* v = find_first({training}, {"epochs_run", "epochs_trained", "epochs_completed", "epochs"})) {
    card(cards, "Epochs", scalar_text(*v));
  }
  // wall_seconds is the whole fit (validation and checkpoints included);
  // train_seconds only the optimiser steps.
  if (const json* v = find_first({training}, {"wall_seconds", "train_seconds", "training_time_s",
                                              "training_time_seconds", "training_time", "total_time_s",
                                              "wall_time_s", "elapsed_s"})) {
    card(cards, "Training time", duration_text(*v));
  }
  // best_metrics is the best epoch by --monitor (val_loss by default), the
  // one ModelCheckpoint kept: its val_accuracy need not be the highest.
  if (const json* v = find_first({member(training, "best_metrics")}, {"val_accuracy"})) {
    const json* epoch = member(training, "best_epoch");
    card(cards, epoch ? "Val accuracy (best epoch, " + scalar_text(*epoch) + ")" : "Val accuracy (best epoch)",
         percent_text(*v));
  } else if (const json* v = find_first({training}, {"best_val_accuracy", "best_validation_accuracy"})) {
    card(cards, "Best val accuracy", percent_text(*v));
  }
  const std::string text = cards.str();
  if (!text.empty()) out << "<div class=\"cards\">\n" << text << "</div>\n";
}

void per_class_table(std::ostringstream& out, const json& per_class) {
  // Normalise both accepted shapes to (name, metrics object) rows.
  std::vector<std::pair<std::string, const json*>> rows;
  if (per_class.is_object()) {
    for (auto it = per_class.begin(); it != per_class.end(); ++it) {
      if (it->is_object()) rows.emplace_back(it.key(), &*it);
    }
  } else if (per_class.is_array()) {
    for (size_t i = 0; i < per_class.size(); ++i) {
      const json& e = per_class[i];
      if (!e.is_object()) continue;
      const json* name = find_first({&e}, {"class", "name", "class_name", "label"});
      rows.emplace_back(name ? scalar_text(*name) : std::to_string(i), &e);
    }
  }
  if (rows.empty()) return;
  const std::vector<std::string> preferred = {"precision", "recall", "f1", "f1_score", "f1-score",
                                              "accuracy", "support", "count"};
  const std::vector<std::string> name_keys = {"class", "name", "class_name", "label"};
  std::vector<std::string> columns;
  for (const auto& key : preferred) {
    for (const auto& [_, obj] : rows) {
      if (obj->contains(key)) {
        columns.push_back(key);
        break;
      }
    }
  }
  for (const auto& [_, obj] : rows) {
    for (auto it = obj->begin(); it != obj->end(); ++it) {
      const std::string& k = it.key();
      if (std::find(columns.begin(), columns.end(), k) == columns.end() &&
          std::find(name_keys.begin(), name_keys.end(), k) == name_keys.end() && !it->is_structured()) {
        columns.push_back(k);
      }
    }
  }
  out << "<h2>Per-class metrics</h2>\n<table>\n<tr><th>class</th>";
  for (const auto& c : columns) out << "<th>" << html_escape(c) << "</th>";
  out << "</tr>\n";
  for (const auto& [name, obj] : rows) {
    out << "<tr><td>" << html_escape(name) << "</td>";
    for (const auto& c : columns) {
      // null: a ratio with nothing to divide by (a class with no test
      // samples has no accuracy); an absent key stays blank.
      const json* v = member(obj, c.c_str());
      const std::string text = v ? scalar_text(*v) : obj->contains(c) ? "n/a" : "";
      out << "<td class=\"num\">" << html_escape(text) << "</td>";
    }
    out << "</tr>\n";
  }
  out << "</table>\n";
}

// Where a plot goes in the page: its index in kKnownPlots, or after them.
size_t known_rank(const fs::path& p) {
  size_t i = 0;
  for (; i < std::size(kKnownPlots); ++i) {
    if (p.stem() == kKnownPlots[i].stem) break;
  }
  return i;
}

// Known plots first in pipeline order, then the rest by path.
void sort_plots(std::vector<fs::path>& plots) {
  std::stable_sort(plots.begin(), plots.end(), [](const fs::path& a, const fs::path& b) {
    return std::make_pair(known_rank(a), a.string()) < std::make_pair(known_rank(b), b.string());
  });
}

// PNGs in results_dir and its direct subfolders, known plots first in
// pipeline order, then the rest by path. Two levels listed one folder at a
// time rather than with recursive_directory_iterator, which mixes two
// copies of libstdc++ in processes linked to PyTorch's wheels (see
// remove_tree in common/atomic_file.h).
std::vector<fs::path> find_plots(const fs::path& results_dir) {
  std::vector<fs::path> found;
  std::vector<fs::path> subfolders;
  auto scan = [&](const fs::path& dir, bool top) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end; !ec && it != end;
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.empty() || name[0] == '.') continue;  // temporaries and hidden folders
      std::error_code type_ec;
      if (it->is_directory(type_ec)) {
        // Linked folders are not entered, as the recursive iterator did not.
        if (top && !it->is_symlink(type_ec)) subfolders.push_back(it->path());
      } else if (it->is_regular_file(type_ec) && it->path().extension() == ".png") {
        found.push_back(it->path());
      }
    }
  };
  scan(results_dir, true);
  for (const auto& dir : subfolders) scan(dir, false);
  sort_plots(found);
  return found;
}

void check_object(const json* v, const char* name) {
  if (v && !v->is_object()) {
    throw UserError(std::string("report summary: \"") + name + "\" must be a JSON object, got " +
                    v->type_name());
  }
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  // OpenSSL is linked already; EVP_EncodeBlock writes unbroken padded
  // base64 (no line breaks, unlike the BIO filter) plus a NUL.
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

void write_html_report(const fs::path& results_dir, const json& summary,
                       const std::optional<std::vector<fs::path>>& plot_files) {
  check_input(summary.is_object() || summary.is_null(),
              std::string("report summary must be a JSON object, got ") + summary.type_name());
  const json* training = member(&summary, "training");
  const json* inference = member(&summary, "inference");
  const json* config = member(&summary, "config");
  check_object(training, "training");
  check_object(inference, "inference");
  check_object(config, "config");
  ensure_dir(results_dir);

  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      << "<title>CIFAR-10 report</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n"
      << "<h1>CIFAR-10 report</h1>\n<p class=\"meta\">Generated " << html_escape(utc_now())
      << " from " << html_escape(fs::absolute(results_dir).lexically_normal().string()) << "</p>\n";

  headline(out, training, inference, config);

  if (training) {
    std::vector<std::pair<std::string, std::string>> rows;
    flatten(*training, "", {"history"}, rows);
    if (!rows.empty()) out << "<h2>Training</h2>\n";
    key_value_table(out, rows);
  }
  if (inference) {
    std::vector<std::pair<std::string, std::string>> rows;
    flatten(*inference, "", {"per_class", "confusion_matrix", "reliability", "reliability_bins"}, rows);
    if (!rows.empty()) out << "<h2>Test results</h2>\n";
    key_value_table(out, rows);
    if (const json* per_class = member(inference, "per_class")) per_class_table(out, *per_class);
  }

  std::vector<fs::path> plots;
  if (plot_files) {
    plots = *plot_files;
    sort_plots(plots);
  } else {
    plots = find_plots(results_dir);
  }
  if (!plots.empty()) out << "<h2>Plots</h2>\n";
  for (const auto& png : plots) {
    const std::string rel = png.lexically_relative(results_dir).string();
    std::string caption = png.stem().string();
    for (const auto& k : kKnownPlots) {
      if (png.stem() == k.stem) caption = k.caption;
    }
    out << "<figure>\n<img alt=\"" << html_escape(caption) << "\" src=\"data:image/png;base64,"
        << base64_encode(read_file(png)) << "\">\n<figcaption>" << html_escape(caption) << " ("
        << html_escape(rel) << ")</figcaption>\n</figure>\n";
  }

  if (config) {
    std::vector<std::pair<std::string, std::string>> rows;
    flatten(*config, "", {}, rows);
    if (!rows.empty()) out << "<h2>Configuration</h2>\n";
    key_value_table(out, rows);
  }
  out << "</body>\n</html>\n";
  write_file_atomic(results_dir / "report.html", out.str());
}

}  // namespace cifar
