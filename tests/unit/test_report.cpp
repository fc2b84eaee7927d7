// Result tables: figures per run and mean/std/median over seeds checked against values worked
// out by hand; malformed run directories give one clear error.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "metasemi/core/Error.h"
#include "metasemi/post/Report.h"
#include "support/TestSupport.h"

using namespace metasemi;
namespace fs = std::filesystem;
using metasemi::test::errorOf;

namespace {

void writeRun(const fs::path& dir, const std::string& method, bool mixUp, int seed,
              const std::vector<double>& errors, bool duplicateStep = false) {
  fs::create_directories(dir);
  std::ofstream cfg(dir / "config.cfg");
  cfg << "# written by the trainer\ndataset = cifar10\nnum-label = 4000\nmethod = " << method
      << "\nmix-up = " << (mixUp ? "true" : "false") << "\nseed = " << seed
      << "\nmilestones = [300000, 350000]\n";
  std::ofstream m(dir / "metrics.jsonl");
  double best = 100.0;
  for (std::size_t i = 0; i < errors.size(); ++i) {
    const long step = 400 * static_cast<long>(i + 1);
    m << R"({"kind":"train","step":)" << step - 1
      << R"(,"lr":0.1,"label_loss":1.5,"unlabel_loss":0.7,"label_acc":40.0,"unlabel_acc":30.0,)"
      << R"("data_time":0.01,"batch_time":0.5})"
      << "\n";
    if (duplicateStep && i == 2) {
      // An evaluation from before a resume, superseded by the one written after it.
      m << R"({"kind":"eval","step":)" << step << R"(,"top1_error":99.0,"top5_error":null,)"
        << R"("best_top1_error":99.0})"
        << "\n";
    }
    best = std::min(best, errors[i]);
    m << R"({"kind":"eval","step":)" << step << R"(,"top1_error":)" << errors[i]
      << R"(,"top5_error":null,"best_top1_error":)" << best << "}\n";
  }
  m << R"({"kind":"note","text":"rows of other kinds are skipped"})"
    << "\n";
}

}  // namespace

BOOST_AUTO_TEST_CASE(median_and_summary) {
  BOOST_CHECK_EQUAL(post::median({3.0, 1.0, 2.0}), 2.0);
  BOOST_CHECK_EQUAL(post::median({4.0, 1.0, 3.0, 2.0}), 2.5);
  const auto s = post::summarize({20.0, 18.0, 22.0});
  BOOST_CHECK_EQUAL(s.n, 3u);
  BOOST_CHECK_CLOSE(s.mean, 20.0, 1e-12);
  BOOST_CHECK_CLOSE(s.std, 2.0, 1e-12);  // sample std: sqrt((0 + 4 + 4) / 2)
  BOOST_CHECK_EQUAL(post::summarize({5.0}).std, 0.0);
  BOOST_CHECK_EQUAL(post::summarize({}).n, 0u);
}

BOOST_AUTO_TEST_CASE(table_over_seeds_matches_hand_computation) {
  const fs::path root = test::freshDir("report_table");
  // Per run (k = 3): best, last, median of the last three.
  writeRun(root / "meta-s1", "meta", true, 1, {50, 30, 20, 22, 21}, true);  // 20, 21, 21
  writeRun(root / "meta-s2", "meta", true, 2, {40, 25, 18, 19, 24});        // 18, 24, 19
  writeRun(root / "meta-s3", "meta", true, 3, {45, 35, 25, 23, 22});        // 22, 22, 23
  writeRun(root / "base-s1", "baseline", false, 1, {60, 40});               // 40, 40, 50
  std::vector<post::RunRecord> runs;
  for (const auto& d : post::findRuns(root)) runs.push_back(post::loadRun(d));
  BOOST_REQUIRE_EQUAL(runs.size(), 4u);

  BOOST_CHECK_EQUAL(runs[1].dir.filename(), "meta-s1");  // sorted: base-s1, meta-s1, ...
  BOOST_REQUIRE_EQUAL(runs[1].evals.size(), 5u);
  BOOST_CHECK_EQUAL(runs[1].evals[2].top1, 20.0);  // the resumed evaluation replaced 99
  BOOST_CHECK_EQUAL(runs[1].trainRows, 5u);
  BOOST_CHECK_EQUAL(runs[1].config.at("milestones"), "[300000, 350000]");

  post::ReportOptions options;
  options.lastK = 3;
  const auto rows = post::aggregate(runs, options);
  BOOST_REQUIRE_EQUAL(rows.size(), 2u);
  const auto& base = rows[0];
  const auto& meta = rows[1];
  BOOST_CHECK_EQUAL(base.key[2], "baseline");
  BOOST_CHECK_EQUAL(base.runs, 1u);
  BOOST_CHECK_EQUAL(base.best.mean, 40.0);
  BOOST_CHECK_EQUAL(base.medianLastK.mean, 50.0);
  BOOST_REQUIRE(base.paper.has_value());
  BOOST_CHECK_EQUAL(*base.paper, 15.43);

  BOOST_CHECK_EQUAL(meta.runs, 3u);
  BOOST_CHECK_CLOSE(meta.best.mean, 20.0, 1e-12);
  BOOST_CHECK_CLOSE(meta.best.std, 2.0, 1e-12);
  BOOST_CHECK_CLOSE(meta.last.mean, 67.0 / 3.0, 1e-12);
  BOOST_CHECK_CLOSE(meta.last.std, std::sqrt((16.0 / 9 + 25.0 / 9 + 1.0 / 9) / 2.0), 1e-10);
  BOOST_CHECK_CLOSE(meta.medianLastK.mean, 21.0, 1e-12);
  BOOST_CHECK_CLOSE(meta.medianLastK.std, 2.0, 1e-12);
  BOOST_CHECK_EQUAL(meta.bestTop5.n, 0u);
  BOOST_REQUIRE(meta.paper.has_value());
  BOOST_CHECK_EQUAL(*meta.paper, 7.78);

  const std::string md = post::toMarkdown(rows, options);
  BOOST_TEST_MESSAGE(md);
  BOOST_CHECK(md.find("| cifar10 | 4000 | meta | true | 3 | 20.00 ± 2.00 | 22.33 ± 1.53 | "
                      "21.00 ± 2.00 | 7.78 |") != std::string::npos);
  BOOST_CHECK(
      md.find("| cifar10 | 4000 | baseline | false | 1 | 40.00 | 40.00 | 50.00 | 15.43 |") !=
      std::string::npos);
  const std::string csv = post::toCsv(rows, options);
  BOOST_CHECK(csv.find("dataset,num-label,method,mix-up,runs,best_mean,best_std") == 0);
  BOOST_CHECK(csv.find("cifar10,4000,meta,true,3,20.0000,2.0000,22.3333,1.5275,21.0000,2.0000,"
                       "7.78") != std::string::npos);
  const std::string tex = post::toLatex(rows, options);
  BOOST_CHECK(tex.find("\\toprule") != std::string::npos);
  BOOST_CHECK(tex.find("$20.00 \\pm 2.00$") != std::string::npos);
  BOOST_CHECK(tex.find("num-label") != std::string::npos);

  // Without the paper column, and grouped by seed as well: one row per run.
  options.paperColumn = false;
  options.groupBy = {"method", "seed"};
  const auto perRun = post::aggregate(runs, options);
  BOOST_CHECK_EQUAL(perRun.size(), 4u);
  BOOST_CHECK(post::toMarkdown(perRun, options).find("paper") == std::string::npos);

  const auto plot = post::errorCurves(runs, options);
  BOOST_REQUIRE_EQUAL(plot.series.size(), 4u);
  BOOST_CHECK_EQUAL(plot.series[1].x.size(), 5u);
  BOOST_CHECK_EQUAL(plot.series[1].x.back(), 2000.0);
}

BOOST_AUTO_TEST_CASE(paper_numbers_follow_the_reference_table) {
  auto paper = [](std::string dataset, std::string labels, std::string method, std::string mix) {
    return post::paperError(
        {{"dataset", dataset}, {"num-label", labels}, {"method", method}, {"mix-up", mix}});
  };
  BOOST_CHECK_EQUAL(*paper("svhn", "1000", "meta", "true"), 3.15);
  BOOST_CHECK_EQUAL(*paper("svhn", "1000", "meta", "false"), 3.68);
  BOOST_CHECK_EQUAL(*paper("cifar100", "10000", "baseline", "true"), 32.67);
  BOOST_CHECK_EQUAL(*paper("cifar100", "10000", "baseline", "false"), 38.74);
  BOOST_CHECK_EQUAL(*paper("imagenet", "128000", "meta", "true"), 44.87);
  BOOST_CHECK(!paper("cifar10", "250", "meta", "true"));
  BOOST_CHECK(!paper("fashion-mnist", "1000", "meta", "true"));
}

BOOST_AUTO_TEST_CASE(bad_run_directories_give_one_clear_error) {
  const fs::path root = test::freshDir("report_bad");
  fs::create_directories(root / "empty");
  BOOST_CHECK(errorOf([&] { post::loadRun(root / "empty"); }).find("empty run directory") !=
              std::string::npos);
  BOOST_CHECK(errorOf([&] { post::loadRun(root / "nowhere"); }).find("not a directory") !=
              std::string::npos);

  writeRun(root / "no-metrics", "meta", true, 1, {10});
  fs::remove(root / "no-metrics" / "metrics.jsonl");
  const auto noMetrics = errorOf([&] { post::loadRun(root / "no-metrics"); });
  BOOST_CHECK(noMetrics.find("metrics.jsonl: missing") != std::string::npos);

  writeRun(root / "no-config", "meta", true, 1, {10});
  fs::remove(root / "no-config" / "config.cfg");
  BOOST_CHECK(errorOf([&] { post::loadRun(root / "no-config"); }).find("config.cfg: missing") !=
              std::string::npos);

  writeRun(root / "no-evals", "meta", true, 1, {});
  BOOST_CHECK(errorOf([&] { post::loadRun(root / "no-evals"); }).find("no evaluation rows") !=
              std::string::npos);

  writeRun(root / "broken-json", "meta", true, 1, {10, 20});
  {
    std::ofstream m(root / "broken-json" / "metrics.jsonl", std::ios::app);
    m << "{\"kind\":\"eval\",\"step\":\n";
  }
  const auto broken = errorOf([&] { post::loadRun(root / "broken-json"); });
  BOOST_CHECK(broken.find("metrics.jsonl:6: not a JSON object") != std::string::npos);

  writeRun(root / "bad-config", "meta", true, 1, {10});
  {
    std::ofstream c(root / "bad-config" / "config.cfg", std::ios::app);
    c << "this line has no equals sign\n";
  }
  BOOST_CHECK(errorOf([&] {
                post::loadRun(root / "bad-config");
              }).find("config.cfg:8: expected 'key = value'") != std::string::npos);

  writeRun(root / "bad-error", "meta", true, 1, {10});
  {
    std::ofstream m(root / "bad-error" / "metrics.jsonl", std::ios::app);
    m << "{\"kind\":\"eval\",\"step\":800,\"top1_error\":\"ten\"}\n";
  }
  BOOST_CHECK(errorOf([&] {
                post::loadRun(root / "bad-error");
              }).find("without a numeric \"top1_error\"") != std::string::npos);
  // Every message is a single line.
  BOOST_CHECK(noMetrics.find('\n') == std::string::npos);
}
