// metasemi-report: run directories -> one result table (Markdown, CSV, LaTeX) and a plot of test
// error against step. See postprocess/README.md.
#include <boost/program_options.hpp>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "metasemi/app/CommandLine.h"
#include "metasemi/core/Error.h"
#include "metasemi/post/Plot.h"
#include "metasemi/post/Report.h"

namespace fs = std::filesystem;
namespace po = boost::program_options;
using namespace metasemi;

namespace {

std::vector<std::string> splitList(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

int reportMain(int argc, char** argv) {
  std::vector<std::string> dirs;
  std::string outDir, name, groupBy, plotOnly;
  std::size_t lastK = 10;
  bool noPaper = false, recursive = false, noPlot = false;
  po::options_description opts(
      "Usage: metasemi-report [options] RUN_DIR...\n"
      "Summarises training runs (config.cfg + metrics.jsonl in each RUN_DIR) as mean +- std "
      "over seeds.\nOptions");
  opts.add_options()("help,h", "show this help")(
      "output-dir,o", po::value(&outDir)->default_value("."), "where the table and plot go")(
      "name", po::value(&name)->default_value("results"),
      "file stem: <name>.md, <name>.csv, <name>.tex, <name>-error.png/.pdf")(
      "group-by", po::value(&groupBy)->default_value("dataset,num-label,method,mix-up"),
      "config keys that define a row (runs differing in others, e.g. seed, are pooled)")(
      "last-k", po::value(&lastK)->default_value(10),
      "the median is taken over each run's last k evaluations")(
      "no-paper", po::bool_switch(&noPaper), "leave out the paper's numbers")(
      "recursive,r", po::bool_switch(&recursive),
      "treat each RUN_DIR as a tree and use every folder below it that has a config.cfg")(
      "no-plot", po::bool_switch(&noPlot), "skip the error-vs-step plot")(
      "plot-only", po::value(&plotOnly),
      "plot only the runs whose config matches every KEY=VALUE of this comma-separated list "
      "(e.g. dataset=cifar10,num-label=4000)");
  po::options_description hidden;
  hidden.add_options()("run-dir", po::value(&dirs));
  po::positional_options_description pos;
  pos.add("run-dir", -1);
  po::variables_map vm;
  if (!app::parseCommandLine(argc, argv, opts, vm, true, &hidden, &pos)) return core::kExitOk;
  MS_REQUIRE(!dirs.empty(), core::ConfigError, "no run directory given (see --help)");
  MS_REQUIRE(lastK >= 1, core::ConfigError, "--last-k: expected a count >= 1, got {}", lastK);
  post::ReportOptions options;
  options.groupBy = splitList(groupBy);
  MS_REQUIRE(!options.groupBy.empty(), core::ConfigError,
             "--group-by: expected comma-separated config keys, got '{}'", groupBy);
  options.lastK = lastK;
  options.paperColumn = !noPaper;

  std::vector<fs::path> runDirs;
  for (const auto& d : dirs) {
    if (recursive) {
      const auto found = post::findRuns(d);
      MS_REQUIRE(!found.empty(), core::IoError, "{}: no run directory (with a config.cfg) below",
                 d);
      runDirs.insert(runDirs.end(), found.begin(), found.end());
    } else {
      runDirs.emplace_back(d);
    }
  }
  std::vector<post::RunRecord> runs;
  for (const auto& d : runDirs) runs.push_back(post::loadRun(d));

  std::vector<std::pair<std::string, std::string>> filter;
  for (const auto& item : splitList(plotOnly)) {
    const auto eq = item.find('=');
    MS_REQUIRE(eq != std::string::npos && eq > 0, core::ConfigError,
               "--plot-only: expected KEY=VALUE items, found '{}'", item);
    filter.emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
  std::vector<post::RunRecord> plotted;
  for (const auto& run : runs) {
    bool keep = true;
    for (const auto& [key, value] : filter) {
      const auto it = run.config.find(key);
      keep = keep && it != run.config.end() && it->second == value;
    }
    if (keep) plotted.push_back(run);
  }
  MS_REQUIRE(noPlot || !plotted.empty(), core::ConfigError, "--plot-only {}: no run matches",
             plotOnly);
  const auto rows = post::aggregate(runs, options);
  const fs::path out(outDir);
  std::error_code ec;
  fs::create_directories(out, ec);
  MS_REQUIRE(fs::is_directory(out), core::IoError, "--output-dir {}: cannot create", outDir);
  const std::string markdown = post::toMarkdown(rows, options);
  post::writeTextAtomic(out / (name + ".md"), markdown);
  post::writeTextAtomic(out / (name + ".csv"), post::toCsv(rows, options));
  post::writeTextAtomic(out / (name + ".tex"), post::toLatex(rows, options));
  if (!noPlot) {
    const auto plot = post::errorCurves(plotted, options);
    post::plotLines(plot, out / (name + "-error.png"));
    post::plotLines(plot, out / (name + "-error.pdf"));
  }
  std::cout << markdown;
  return core::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  return app::runProgram("metasemi-report", [&] { return reportMain(argc, argv); });
}
