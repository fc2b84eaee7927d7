// The README's main job (jobs/demo.sh) with a handful of steps: every output exists and is well
// formed. Uses the programs already built (DEMO_BUILD=0).
#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "metasemi/io/H5File.h"
#include "metasemi/post/Plot.h"
#include "support/TestSupport.h"

namespace fs = std::filesystem;

BOOST_AUTO_TEST_CASE(demo_pipeline_writes_table_curves_and_tsne) {
  const fs::path dir = metasemi::test::freshDir("demo");
  const fs::path out = dir / "out";
  {
    std::ofstream cfg(dir / "tiny.cfg");
    cfg << "dataset = fashion-mnist\nnum-label = 100\nseed = 3\nwidth = 0.125\n"
           "batch-size = 16\ntotal-steps = 6\nwarmup = 2\nmilestones = [5]\ntest-freq = 3\n"
           "print-freq = 3\neval-batch-size = 1000\nnum-workers = 1\nthreads = 1\n";
  }
  const auto r = metasemi::test::runCommand(
      fmt::format("DEMO_BUILD=0 DEMO_CONFIG={} DEMO_OUT={} DEMO_TSNE_POINTS=400 bash {}",
                  (dir / "tiny.cfg").string(), out.string(),
                  metasemi::test::sourcePath("jobs/demo.sh").string()));
  BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
  // It says which stage it is on: without the build, 6 of them.
  BOOST_TEST(r.output.find("== [1/6 ") != std::string::npos, r.output);
  BOOST_TEST(r.output.find("] training: baseline") != std::string::npos, r.output);
  BOOST_TEST(r.output.find("== [6/6 ") != std::string::npos, r.output);

  // The table: one row per method, printed at the end.
  std::ifstream md(out / "results.md");
  const std::string table((std::istreambuf_iterator<char>(md)), {});
  BOOST_TEST(table.find("| fashion-mnist | 100 | meta | true | 1 |") != std::string::npos, table);
  BOOST_TEST(table.find("| fashion-mnist | 100 | baseline | false | 1 |") != std::string::npos,
             table);
  BOOST_TEST(r.output.find("| fashion-mnist | 100 | meta | true | 1 |") != std::string::npos);
  BOOST_TEST(fs::file_size(out / "results.csv") > 0u);
  BOOST_TEST(fs::file_size(out / "results.tex") > 0u);

  // Both runs trained and evaluated twice.
  for (const char* run : {"metasemi", "baseline"}) {
    metasemi::io::H5File ckpt((out / "runs" / run / "checkpoint.h5").string(),
                              metasemi::io::H5File::Mode::kRead);
    BOOST_TEST(ckpt.attrInt("/", "step") == 6, run);
    // metasemi-eval on the best checkpoint: the whole test set, counted once.
    std::ifstream in(out / "runs" / run / "eval.json");
    const auto eval = nlohmann::json::parse(in);
    BOOST_TEST(eval.at("images").get<std::int64_t>() == 10000, run);
    BOOST_TEST(eval.at("top1_error").get<double>() > 0.0, run);
  }

  // Features: every labeled image plus an equal share of unlabeled and test images.
  metasemi::io::H5File features((out / "features.h5").string(), metasemi::io::H5File::Mode::kRead);
  const auto shape = features.info("features").shape;
  BOOST_TEST(shape[0] == 100 + 150 + 150);
  BOOST_TEST(shape[1] == 16);  // ConvLarge's pooled feature at width 0.125

  // Figures decode as images of the requested size and are not blank.
  for (const fs::path png : {out / "results-error.png", out / "tsne" / "visualization.png"}) {
    const auto s = metasemi::post::inspectPng(png);
    BOOST_TEST(s.width > 0, png);
    BOOST_TEST(s.distinctColors > 3, png);
  }
  BOOST_TEST(metasemi::post::inspectPng(out / "tsne" / "visualization.png").width == 2400);
}
