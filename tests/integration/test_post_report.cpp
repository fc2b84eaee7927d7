// metasemi-report end to end: tables and plot from run directories; bad input ends with one
// line on the terminal and a non-zero exit code.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "metasemi/core/Error.h"
#include "metasemi/post/Plot.h"
#include "support/TestSupport.h"

using namespace metasemi;
namespace fs = std::filesystem;

namespace {

void writeRun(const fs::path& dir, const std::string& dataset, const std::string& method, int seed,
              const std::vector<double>& errors) {
  fs::create_directories(dir);
  std::ofstream cfg(dir / "config.cfg");
  cfg << "dataset = " << dataset << "\nnum-label = 1000\nmethod = " << method
      << "\nmix-up = true\nseed = " << seed << "\n";
  std::ofstream m(dir / "metrics.jsonl");
  for (std::size_t i = 0; i < errors.size(); ++i) {
    m << R"({"kind":"eval","step":)" << 400 * (i + 1) << R"(,"top1_error":)" << errors[i]
      << R"(,"top5_error":null,"best_top1_error":0})"
      << "\n";
  }
}

std::string report() { return test::binary("metasemi-report").string(); }

int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(tables_and_plot_from_run_directories) {
  const fs::path root = test::freshDir("post_report");
  writeRun(root / "runs" / "svhn-meta-1", "svhn", "meta", 1, {30, 10, 5, 4});
  writeRun(root / "runs" / "svhn-meta-2", "svhn", "meta", 2, {28, 12, 6, 3});
  writeRun(root / "runs" / "svhn-base-1", "svhn", "baseline", 1, {40, 20, 12, 11});
  const auto r = test::runCommand(report() + " -r " + (root / "runs").string() + " -o " +
                                  (root / "out").string() + " --last-k 2");
  BOOST_TEST_MESSAGE(r.output);
  BOOST_REQUIRE_EQUAL(r.exitCode, 0);
  // svhn/1000 meta with mix-up: best 4 and 3 -> 3.50 +- 0.71; paper 3.15.
  BOOST_CHECK(r.output.find("| svhn | 1000 | meta | true | 2 | 3.50 ± 0.71 |") !=
              std::string::npos);
  BOOST_CHECK(r.output.find("3.15") != std::string::npos);
  for (const char* f : {"results.md", "results.csv", "results.tex", "results-error.pdf"}) {
    BOOST_CHECK_MESSAGE(fs::file_size(root / "out" / f) > 0, f);
  }
  const auto png = post::inspectPng(root / "out" / "results-error.png");
  BOOST_CHECK_EQUAL(png.width, 1000);
  BOOST_CHECK_EQUAL(png.height, 650);
  BOOST_CHECK_GT(png.inkFraction, 0.01);

  // Only the MetaSemi runs in the plot: less ink than three curves.
  const auto meta = test::runCommand(report() + " -r " + (root / "runs").string() + " -o " +
                                     (root / "meta").string() + " --plot-only method=meta");
  BOOST_REQUIRE_EQUAL(meta.exitCode, 0);
  BOOST_CHECK_LT(post::inspectPng(root / "meta" / "results-error.png").inkFraction,
                 png.inkFraction);
}

BOOST_AUTO_TEST_CASE(bad_input_is_one_line_and_a_non_zero_exit) {
  const fs::path root = test::freshDir("post_report_bad");
  fs::create_directories(root / "empty");
  writeRun(root / "no-metrics", "svhn", "meta", 1, {10});
  fs::remove(root / "no-metrics" / "metrics.jsonl");
  writeRun(root / "no-config", "svhn", "meta", 1, {10});
  fs::remove(root / "no-config" / "config.cfg");
  writeRun(root / "good", "svhn", "meta", 1, {10, 9});
  struct Case {
    std::string args, expected;
    int code;
  };
  const std::vector<Case> cases = {
      {(root / "empty").string(), "empty run directory", core::kExitIo},
      {(root / "no-metrics").string(), "metrics.jsonl: missing", core::kExitIo},
      {(root / "no-config").string(), "config.cfg: missing", core::kExitIo},
      {"-r " + (root / "empty").string(), "no run directory", core::kExitIo},
      {"", "no run directory given", core::kExitConfig},
      {"--last-k zero " + (root / "no-config").string(), "last-k", core::kExitConfig},
      {"--plot-only method " + (root / "good").string(), "KEY=VALUE", core::kExitConfig},
      {"--plot-only method=fft " + (root / "good").string(), "no run matches", core::kExitConfig},
  };
  for (const auto& c : cases) {
    const auto r = test::runCommand(report() + " " + c.args + " -o " + (root / "out").string());
    BOOST_TEST_MESSAGE(c.args << " -> " << r.exitCode << ": " << r.output);
    BOOST_CHECK_EQUAL(r.exitCode, c.code);
    BOOST_CHECK_EQUAL(lines(r.output), 1);
    BOOST_CHECK(r.output.rfind("metasemi-report: ", 0) == 0);
    BOOST_CHECK_MESSAGE(r.output.find(c.expected) != std::string::npos, r.output);
  }
  // Nothing half-written is left where the tables would go.
  BOOST_CHECK(!fs::exists(root / "out" / "results.md"));
}
