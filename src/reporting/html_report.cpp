#include "reporting/html_report.h"

#include <openssl/evp.h>

#include <algorithm>
#include <ctime>
#include <sstream>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"
#include "reporting/html_writer.h"
#include "reporting/report_sections.h"

namespace cifar {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace html;

namespace {

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
    {"prediction_samples", "Sample test predictions (wrong ones in a dashed orange frame)"},
};

// A configuration value longer than this many list entries is summarised:
// the table is the run's record, but a list of thousands says nothing.
constexpr size_t kMaxListedValues = 20;

const char* const kStyle = R"(
body { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; }
h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { margin-bottom: 0.3em; }
.meta, .note { color: #666; }
.meta { margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: 1em; margin: 1.5em 0; }
.card { border: 1px solid #ddd; border-radius: 8px; padding: 0.8em 1.2em; min-width: 9em; background: #fafafa; }
.card .label { color: #666; font-size: 0.9em; }
.card .value { font-size: 1.6em; font-weight: 600; }
.card .note { font-size: 0.85em; }
table { border-collapse: collapse; margin: 0.6em 0 1em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.7em; text-align: left; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: #fff4d6; font-weight: 600; }
figure { margin: 2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; margin-top: 0.4em; }
)";

void flatten(const json& obj, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& rows) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (it->is_object() && !it->empty()) {
      flatten(*it, key, rows);
    } else {
      rows.push_back({key, it->is_null() ? "null" : config_value_text(*it)});
    }
  }
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
  Parts p;
  p.training = member(&summary, "training");
  p.inference = member(&summary, "inference");
  p.config = member(&summary, "config");
  check_object(p.training, "training");
  check_object(p.inference, "inference");
  check_object(p.config, "config");
  p.test = p.inference ? p.inference : member(p.training, "test");
  p.model = member(p.training, "model") ? member(p.training, "model") : member(p.inference, "model");
  ensure_dir(results_dir);

  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      << "<title>CIFAR-10 report</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n"
      << "<h1>CIFAR-10 report</h1>\n<p class=\"meta\">Generated " << html_escape(utc_now())
      << " from " << html_escape(fs::absolute(results_dir).lexically_normal().string()) << "</p>\n";

  headline(out, p);
  model_section(out, p);
  data_section(out, p);
  training_section(out, p);
  test_section(out, p);

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

  if (p.config && !p.config->empty()) {
    std::vector<std::pair<std::string, std::string>> rows;
    flatten(*p.config, "", rows);
    out << "<h2>Configuration</h2>\n<p class=\"note\">Every setting of the run, as results/config.json holds it.</p>\n";
    key_value_table(out, rows, /*keep_empty=*/true);
  }
  out << "</body>\n</html>\n";
  write_file_atomic(results_dir / "report.html", out.str());
}

}  // namespace cifar
