// A whole study on the one-node Slurm through jobs/submit-study.sh with the tiny settings of
// jobs/configs/ci-tiny.cfg: prep (Fashion-MNIST shards, one labeled split per seed) -> training
// as a 2-element seed array on 2 ranks -> metasemi-eval -> report and t-SNE. Every job must end
// COMPLETED and every output must be there and agree with the others.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>

#include "metasemi/io/H5File.h"
#include "metasemi/io/TensorIo.h"
#include "slurm/SlurmCluster.h"
#include "support/TestSupport.h"

namespace fs = std::filesystem;
using metasemi::io::H5File;
using metasemi::test::readText;

namespace {

std::vector<nlohmann::json> metricsRows(const fs::path& file) {
  std::vector<nlohmann::json> rows;
  std::istringstream in(readText(file));
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

// The job id that submit-study.sh printed for `kind` ("prep", "train", ...), "" when none.
std::string printedId(const std::string& output, const std::string& kind) {
  std::smatch m;
  const std::regex line("\\n  " + kind + " +job ([0-9]+)");
  return std::regex_search(output, m, line) ? m[1].str() : "";
}

// True when the two checkpoints' model parameters are bit-identical.
bool sameModel(const fs::path& a, const fs::path& b) {
  H5File fa(a.string(), H5File::Mode::kRead), fb(b.string(), H5File::Mode::kRead);
  for (const auto& n : fa.list("model")) {
    if (!torch::equal(metasemi::io::readTensor(fa, "model/" + n),
                      metasemi::io::readTensor(fb, "model/" + n))) {
      return false;
    }
  }
  return true;
}

}  // namespace

BOOST_AUTO_TEST_CASE(study_through_submit_study) {
  if (!metasemi::test::slurmInstalled()) {
    BOOST_FAIL("slurm-wlm and munge are not installed (see env/packages.txt)");
  }
  metasemi::test::SlurmCluster cluster("slurm_pipeline", "16847");
  const auto started = cluster.start();
  BOOST_TEST_REQUIRE(started.exitCode == 0, started.output);

  const fs::path study = cluster.dir() / "studies" / "ci-tiny";
  const fs::path data = cluster.dir() / "data" / "fashion-mnist";
  const bool haveEval = fs::exists(metasemi::test::binary("metasemi-eval"));
  if (!haveEval) {
    BOOST_TEST_MESSAGE("build/bin/metasemi-eval is not built: the eval step is left out");
  }
  const std::vector<int> seeds = {1, 2};
  const int tsnePoints = 500;
  const auto submitted = cluster.run(fmt::format(
      "{} --experiment ci-tiny --seeds 1,2 --ranks-per-node 2 --cpus-per-rank 1 --out {} "
      "--data-root {} --input {} --time 30 --prep-time 10 --eval-time 10 --report-time 10 "
      "--tsne-points {} {}",
      metasemi::test::sourcePath("jobs/submit-study.sh").string(),
      (cluster.dir() / "studies").string(), (cluster.dir() / "data").string(),
      metasemi::test::harnessEnv("METASEMI_FASHION_MNIST"), tsnePoints,
      haveEval ? "" : "--no-eval"));
  BOOST_TEST_REQUIRE(submitted.exitCode == 0, submitted.output);
  const std::string prepId = printedId(submitted.output, "prep");
  const std::string trainId = printedId(submitted.output, "train");
  const std::string evalId = printedId(submitted.output, "eval");
  const std::string reportId = printedId(submitted.output, "report");
  BOOST_TEST_REQUIRE((!prepId.empty() && !trainId.empty() && !reportId.empty()), submitted.output);
  BOOST_TEST(evalId.empty() == !haveEval, submitted.output);

  std::map<std::string, metasemi::test::SlurmJob> seen;
  const bool done = cluster.waitForAll(std::chrono::seconds(480), seen);
  BOOST_TEST_REQUIRE(done, "jobs still running:\n" << cluster.diagnostics());

  // Every job, each array task included, completed with exit code 0; the array had 2 tasks.
  std::size_t trainTasks = 0;
  for (const auto& [id, job] : seen) {
    BOOST_TEST(job.state == "COMPLETED", "job " << id << " is " << job.state << " (" << job.reason
                                                << ")\n"
                                                << cluster.diagnostics());
    BOOST_TEST(job.exitCode == "0:0", "job " << id << " exit code " << job.exitCode);
    if (job.arrayJobId == trainId) ++trainTasks;
  }
  BOOST_TEST(trainTasks == seeds.size());
  for (const auto& id : {prepId, reportId}) BOOST_TEST(seen.count(id) == 1u, id);
  if (haveEval) BOOST_TEST(seen.count(evalId) == 1u);

  // Prep: the shard set and one labeled split per seed.
  BOOST_TEST(fs::exists(data / "train.h5"));
  BOOST_TEST(fs::exists(data / "test.h5"));
  for (int s : seeds) BOOST_TEST(fs::exists(data / fmt::format("splits/labels-100-seed{}.h5", s)));

  // Training: per seed a run folder with its settings, checkpoints and metrics.
  std::vector<double> bestErrors;
  for (int s : seeds) {
    const fs::path run = study / "runs" / "ci-tiny" / fmt::format("seed{}", s);
    BOOST_TEST_CONTEXT("run " << run) {
      BOOST_TEST_REQUIRE(fs::exists(run / "checkpoint.h5"));
      BOOST_TEST_REQUIRE(fs::exists(run / "model_best.h5"));
      BOOST_TEST(fs::exists(run / "log.txt"));
      BOOST_TEST(readText(run / "config.cfg").find(fmt::format("\nseed = {}\n", s)) !=
                 std::string::npos);
      {
        H5File ckpt((run / "checkpoint.h5").string(), H5File::Mode::kRead);
        BOOST_TEST(ckpt.attrInt("/", "step") == 30);
      }
      std::vector<std::int64_t> trainSteps, evalSteps;
      double best = 100.0;
      for (const auto& row : metricsRows(run / "metrics.jsonl")) {
        if (row.at("kind") == "train") trainSteps.push_back(row.at("step").get<std::int64_t>());
        if (row.at("kind") == "eval") {
          evalSteps.push_back(row.at("step").get<std::int64_t>());
          const double e = row.at("top1_error").get<double>();
          BOOST_TEST((e >= 0.0 && e <= 100.0), e);
          best = std::min(best, e);
        }
      }
      BOOST_TEST(trainSteps == (std::vector<std::int64_t>{5, 10, 15, 20, 25, 30}),
                 boost::test_tools::per_element());
      BOOST_TEST(evalSteps == (std::vector<std::int64_t>{15, 30}),
                 boost::test_tools::per_element());
      bestErrors.push_back(best);

      // metasemi-eval of model_best.h5 reproduces the best error the trainer recorded.
      if (haveEval) {
        BOOST_TEST_REQUIRE(fs::exists(run / "eval.json"));
        const auto e = nlohmann::json::parse(readText(run / "eval.json"));
        BOOST_TEST(e.at("images").get<std::int64_t>() == 10000);
        BOOST_TEST(std::abs(e.at("top1_error").get<double>() - best) < 1e-6, e.at("top1_error")
                                                                                 << " vs " << best);
      }
      const std::string trainLog =
          readText(study / "logs" /
                   fmt::format("train-ci-tiny-{}_{}.out", trainId, s == seeds.front() ? 0 : 1));
      BOOST_TEST(trainLog.find(fmt::format("seed {}:", s)) != std::string::npos, trainLog);
      BOOST_TEST(trainLog.find("finished: " + run.string()) != std::string::npos, trainLog);
    }
  }
  // The seeds reached the trainer: the two runs differ.
  BOOST_TEST(!sameModel(study / "runs/ci-tiny/seed1/checkpoint.h5",
                        study / "runs/ci-tiny/seed2/checkpoint.h5"));

  // Report: one row pooling both seeds, whose best error is the mean of the runs' best errors.
  const fs::path report = study / "report";
  const std::string table = readText(report / "results.md");
  const double mean = (bestErrors[0] + bestErrors[1]) / 2.0;
  BOOST_TEST(table.find("| fashion-mnist | 100 | meta | true | 2 | " +
                        fmt::format("{:.2f}", mean)) != std::string::npos,
             table);
  for (const char* f : {"results.csv", "results.tex", "results-error.png", "results-error.pdf",
                        "tsne/visualization.png", "tsne/visualization.pdf", "tsne/embedding.h5"}) {
    BOOST_TEST((fs::exists(report / f) && fs::file_size(report / f) > 0), f);
  }
  H5File features((report / "features.h5").string(), H5File::Mode::kRead);
  BOOST_TEST(features.info("features").shape.at(0) == tsnePoints);
  BOOST_TEST(readText(study / "logs" / fmt::format("prep-{}.out", prepId)).find("done:") !=
             std::string::npos);
}
