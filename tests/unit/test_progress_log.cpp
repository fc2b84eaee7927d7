// train::ProgressLog: the reference's periodic line, its means, ETA and metrics rows; the
// evaluation line; the stop on a non-finite loss. train::FaultInjection's parsing.
#include <torch/torch.h>

#include <cmath>

#include "metasemi/train/FaultInjection.h"
#include "metasemi/train/ProgressLog.h"
#include "support/TestSupport.h"

using namespace metasemi;

namespace {

meta::StepResult result(double lloss, double uloss, double lacc, double uacc) {
  meta::StepResult r;
  r.labeledLoss = torch::tensor(static_cast<float>(lloss));
  r.unlabeledLoss = torch::tensor(static_cast<float>(uloss));
  r.labeledAccuracy = torch::tensor(static_cast<float>(lacc));
  r.unlabeledAccuracy = torch::tensor(static_cast<float>(uacc));
  return r;
}

}  // namespace

BOOST_AUTO_TEST_CASE(print_line_means_eta_and_row) {
  train::ProgressLog log(100, 1000);  // resumed at step 100
  log.add(result(2.0, 0.5, 25.0, 50.0), 0.01, 0.10);
  log.add(result(1.0, 0.25, 75.0, 0.0), 0.03, 0.30);
  // 2 steps done in 8 s: 898 more steps take 3592 s.
  const train::ProgressLine p = log.print(102, 0.05, 0.5, 8.0);
  BOOST_TEST(p.text ==
                 "Step 00102/1000 Dtime 0.020 Btime 0.200 Lloss 1.5000 Uloss 0.3750 Lacc 50.00 "
                 "Uacc 25.00 LR 0.05000 data-wait 10.0% ETA 00:59:52",
             p.text);
  BOOST_TEST(p.labeledLoss == 1.5);
  BOOST_TEST(p.row["kind"] == "train");
  BOOST_TEST(p.row["step"] == 102);
  BOOST_TEST(p.row["lr"] == 0.05);
  BOOST_TEST(p.row["weight"] == 0.5);
  BOOST_TEST(p.row["label_loss"].get<double>() == 1.5);
  BOOST_TEST(p.row["unlabel_acc"].get<double>() == 25.0);
  BOOST_TEST(std::abs(p.row["data_time"].get<double>() - 0.02) < 1e-12);
  BOOST_TEST(std::abs(p.row["data_wait_fraction"].get<double>() - 0.1) < 1e-12);

  // The means restart after a print; the data-wait fraction is over the whole run.
  log.add(result(4.0, 1.0, 10.0, 20.0), 0.0, 0.6);
  const train::ProgressLine q = log.print(103, 0.05, 0.5, 9.0);
  BOOST_TEST(q.row["label_loss"].get<double>() == 4.0);
  BOOST_TEST(std::abs(q.row["data_wait_fraction"].get<double>() - 0.04) < 1e-12);
  BOOST_TEST(std::abs(log.dataWaitFraction() - 0.04) < 1e-12);
}

BOOST_AUTO_TEST_CASE(baseline_rows_have_null_unlabeled_figures) {
  train::ProgressLog log(0, 10);
  meta::StepResult r;
  r.labeledLoss = torch::tensor(0.5f);
  r.labeledAccuracy = torch::tensor(100.0f);
  log.add(r, 0.0, 1.0);
  const train::ProgressLine p = log.print(1, 0.1, 1.0, 1.0);
  BOOST_TEST(p.row["unlabel_loss"].is_null());
  BOOST_TEST(p.row["unlabel_acc"].is_null());
  BOOST_TEST(p.text.find("Uloss nan") != std::string::npos, p.text);
}

BOOST_AUTO_TEST_CASE(a_non_finite_labeled_loss_stops_the_run) {
  train::ProgressLog log(0, 10);
  log.add(result(NAN, 0, 0, 0), 0.0, 1.0);
  const auto msg = test::errorOf<core::NumericalError>([&] { log.print(1, 0.1, 1.0, 1.0); });
  BOOST_TEST(msg.find("step 0: the labeled loss is nan") != std::string::npos, msg);
  BOOST_TEST(core::exitCodeFor(core::NumericalError("x")) == 5);
}

BOOST_AUTO_TEST_CASE(evaluation_line_and_row) {
  const auto ten = train::ProgressLog::evaluation(400, 12.345, 1.5, 10.0, 10000, false);
  BOOST_TEST(ten.text == "Test step 00400: top-1 error 12.35% (best 10.00%) over 10000 images",
             ten.text);
  BOOST_TEST(ten.row["top5_error"].is_null());
  BOOST_TEST(ten.row["top1_error"].get<double>() == 12.345);
  BOOST_TEST(ten.row["best_top1_error"].get<double>() == 10.0);
  const auto hundred = train::ProgressLog::evaluation(800, 40.0, 15.25, 40.0, 500, true);
  BOOST_TEST(hundred.text ==
                 "Test step 00800: top-1 error 40.00%, top-5 error 15.25% (best 40.00%) over "
                 "500 images",
             hundred.text);
  BOOST_TEST(hundred.row["top5_error"].get<double>() == 15.25);
}

BOOST_AUTO_TEST_CASE(durations) {
  BOOST_TEST(train::ProgressLog::formatDuration(0) == "00:00:00");
  BOOST_TEST(train::ProgressLog::formatDuration(3723.9) == "01:02:03");
  BOOST_TEST(train::ProgressLog::formatDuration(2 * 86400 + 3 * 3600 + 4 * 60) == "2d03h04m");
  BOOST_TEST(train::ProgressLog::formatDuration(NAN) == "?");
  BOOST_TEST(train::ProgressLog::formatDuration(-1) == "?");
}

BOOST_AUTO_TEST_CASE(fault_injection_specs) {
  const auto none = train::FaultInjection::parse("");
  BOOST_TEST(none.kind().empty());
  none.atStep(0, 0);  // returns: nothing injected
  const auto f = train::FaultInjection::parse("throw:1:25");
  BOOST_TEST(f.kind() == "throw");
  BOOST_TEST(f.rank() == 1);
  BOOST_TEST(f.step() == 25);
  f.atStep(0, 25);  // another rank
  f.atStep(1, 24);  // another step
  BOOST_CHECK_THROW(f.atStep(1, 25), std::runtime_error);
  for (const char* bad : {"throw", "throw:1", "boom:1:2", "hang:x:2", "exit:1:2x", "exit:1:"}) {
    const auto msg = test::errorOf<core::ConfigError>([&] { train::FaultInjection::parse(bad); });
    BOOST_TEST(msg.find("METASEMI_FAULT") != std::string::npos, bad);
  }
}
