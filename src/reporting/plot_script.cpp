#include "reporting/plot_script.h"

#include <cmath>

#include "common/atomic_file.h"
#include "common/error.h"
#include "reporting/gnuplot.h"

namespace cifar::plot {
namespace fs = std::filesystem;

std::string num(double v) {
  if (!std::isfinite(v)) return "?";
  Text t;
  t << v;
  return t.str();
}

std::string script_header(const PlotSize& size, int font_pt, const std::string& about) {
  Text t;
  t << "# " << about << "\n"
    << "# Redraw from this folder: gnuplot " << size.name << ".gp\n"
    << "if (!exists(\"outfile\")) outfile = '" << size.name << ".png'\n"
    // noenhanced: class names such as "a_b" or "x^2" print as written;
    // rounded: thick frames close at their corners (butt ends leave a notch).
    << "set terminal pngcairo noenhanced rounded size " << size.width << "," << size.height
    << " font 'Sans," << font_pt << "'\n"
    << "set output outfile\n"
    << "set datafile missing '?'\n";
  return t.str();
}

fs::path render(const fs::path& out_dir, const PlotSize& size,
            const std::vector<std::pair<std::string, std::string>>& data_files,
            const std::string& script) {
  const fs::path dir = out_dir.empty() ? fs::path(".") : out_dir;
  ensure_dir(dir);
  for (const auto& [name, bytes] : data_files) write_file_atomic(dir / name, bytes);
  const fs::path gp = dir / (std::string(size.name) + ".gp");
  write_file_atomic(gp, script);
  const fs::path png = dir / (std::string(size.name) + ".png");
  render_gnuplot(gp, png);
  return png;
}

void check_class_names(const std::vector<std::string>& class_names, size_t n, const std::string& what) {
  check_input(!class_names.empty(), what + ": no class names given");
  check_input(class_names.size() == n, what + ": " + std::to_string(n) + " values but " +
                                           std::to_string(class_names.size()) + " class names",
              "pass one value per class, in class-index order");
}

std::string name_tics(const std::vector<std::string>& names) {
  std::string s = "(";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) s += ", ";
    s += gp_quote(names[i]) + " " + std::to_string(i);
  }
  return s + ")";
}

int64_t epoch_tic_step(int64_t epochs) {
  int64_t step = 1;
  for (int64_t decade = 1;; decade *= 10) {
    for (int64_t m : {1, 2, 5}) {
      step = m * decade;
      if (epochs / step <= 12) return step;
    }
  }
}

}  // namespace cifar::plot
