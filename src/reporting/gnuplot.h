// Rendering plots with gnuplot (pngcairo) run as a child process. Every plot
// keeps its script and data beside the PNG so a user can restyle it and run
// `gnuplot <name>.gp` from that folder; the scripts therefore use relative
// file names and take the output name from the variable `outfile`.
#pragma once
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace cifar {

// The line every caller shows when gnuplot is absent.
inline constexpr const char* kGnuplotMissing =
    "gnuplot not found: install gnuplot-nox (scripts/setup.sh) or pass --skip-visualization";

// Long enough for the heaviest plot (25 image tiles render in well under a
// second) on a loaded machine; short enough that a hung gnuplot (waiting on
// a font server, say) cannot stall the end of a multi-hour run.
inline constexpr std::chrono::seconds kGnuplotTimeout{60};

// The gnuplot executable found on $PATH, if any.
std::optional<std::filesystem::path> find_gnuplot();

// Runs `gnuplot -e "outfile='<tmp>'" <script>` in the script's folder, the
// temporary file beside `png`, then renames it over `png`, so a failed or
// killed run leaves any previous PNG intact. Throws UserError with
// kGnuplotMissing if gnuplot is absent, and with gnuplot's stderr if it fails
// or runs past `timeout`. `png` must be in the script's folder.
void render_gnuplot(const std::filesystem::path& script, const std::filesystem::path& png,
                    std::chrono::milliseconds timeout = kGnuplotTimeout);

// A gnuplot single-quoted string literal. Single quotes are the only ones
// gnuplot reads without backslash escapes; control characters become spaces
// so a class name cannot end the line and inject script.
std::string gp_quote(std::string_view text);

}  // namespace cifar
