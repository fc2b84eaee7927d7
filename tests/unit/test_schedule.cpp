// Learning-rate schedules and the consistency-weight ramp at their corner steps, against the
// reference formulas (train_meta.py compute_lr, utils.py compute_weight and CosAnnealingLR).
#include <cmath>

#include "metasemi/core/Error.h"
#include "metasemi/meta/Schedule.h"
#include "support/TestSupport.h"

using namespace metasemi;

namespace {
bool close(double a, double b) { return std::abs(a - b) <= 1e-15 * std::max(1.0, std::abs(b)); }
}  // namespace

BOOST_AUTO_TEST_CASE(step_schedule_corners) {
  const meta::StepLrSchedule s;  // lr 0.1, warm-up 4000, milestones 300000/350000, gamma 0.1
  BOOST_TEST(s.lr(0) == 0.0);
  BOOST_TEST(close(s.lr(1), 0.1 / 4000));
  BOOST_TEST(close(s.lr(2000), 0.05));
  BOOST_TEST(close(s.lr(3999), 0.1 * 3999 / 4000));
  BOOST_TEST(s.lr(4000) == 0.1);    // warm-up ends: step < warmup is false
  BOOST_TEST(s.lr(300000) == 0.1);  // a milestone counts only for step > m
  BOOST_TEST(close(s.lr(300001), 0.1 * 0.1));
  BOOST_TEST(close(s.lr(350000), 0.1 * 0.1));
  BOOST_TEST(close(s.lr(350001), 0.1 * 0.1 * 0.1));
  BOOST_TEST(close(s.lr(399999), 0.1 * 0.1 * 0.1));

  meta::StepLrSchedule none;
  none.warmup = 0;
  none.milestones = {};
  BOOST_TEST(none.lr(0) == 0.1);
  BOOST_TEST(none.lr(10) == 0.1);
}

BOOST_AUTO_TEST_CASE(cosine_schedule_corners) {
  // ImageNet recipe shape: loader length 10, 5 warm-up epochs of 600.
  meta::CosineLrSchedule s;
  s.lrMax = 0.1;
  s.warmupIters = 50;
  s.maxIters = 6000;
  BOOST_TEST(close(s.lr(0), 0.1 * 1 / 50));  // the counter is stepped before the first step
  BOOST_TEST(close(s.lr(48), 0.1 * 49 / 50));
  BOOST_TEST(close(s.lr(49), 0.1));  // counter = warmupIters: last warm-up value
  BOOST_TEST(close(s.lr(50), (1 + std::cos(M_PI * 1 / 5950)) / 2 * 0.1));
  BOOST_TEST(close(s.lr(50 + 2974), (1 + std::cos(M_PI * 2975 / 5950)) / 2 * 0.1));
  BOOST_TEST(std::abs(s.lr(5999)) < 1e-18);  // counter = maxIters: cos(π) = -1
  BOOST_TEST(s.lr(6000) > 0.0);              // past the end the reference's lr rises again

  meta::CosineLrSchedule noWarmup{0.2, 0, 100};
  BOOST_TEST(close(noWarmup.lr(0), (1 + std::cos(M_PI / 100)) / 2 * 0.2));
  meta::CosineLrSchedule bad{0.1, 10, 10};
  BOOST_CHECK_THROW(bad.lr(0), core::ConfigError);
}

BOOST_AUTO_TEST_CASE(weight_ramp_corners) {
  BOOST_TEST(meta::rampWeight(1.0, 0, 4000) == 0.0);
  BOOST_TEST(close(meta::rampWeight(1.0, 1000, 4000), 0.25));
  BOOST_TEST(meta::rampWeight(2.0, 4000, 4000) == 2.0);  // step ≤ rampup: 2·4000/4000
  BOOST_TEST(meta::rampWeight(2.0, 4001, 4000) == 2.0);
  BOOST_TEST(meta::rampWeight(0.5, 399999, 4000) == 0.5);
  BOOST_TEST(meta::rampWeight(1.0, 0, 0) == 1.0);  // no ramp
}
