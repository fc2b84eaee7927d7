// SGD as torch.optim.SGD(momentum, weight_decay, nesterov=False): hand-computed updates, the
// momentum buffer initialised with the first gradient, and momentum buffers saved and restored.
#include <vector>

#include "metasemi/core/Error.h"
#include "metasemi/meta/Sgd.h"
#include "support/TestSupport.h"

using namespace metasemi;

namespace {

torch::Tensor leaf(std::initializer_list<double> v) {
  return torch::tensor(std::vector<double>(v), torch::kDouble).requires_grad_(true);
}

void setGrad(torch::Tensor& p, std::initializer_list<double> g) {
  p.mutable_grad() = torch::tensor(std::vector<double>(g), torch::kDouble);
}

}  // namespace

BOOST_AUTO_TEST_CASE(updates_match_hand_computation) {
  auto p = leaf({1.0, -2.0});
  auto q = leaf({0.5});
  meta::Sgd sgd({p, q}, 0.9, 0.01);
  sgd.setLr(0.1);
  BOOST_TEST(sgd.lr() == 0.1);
  // Step 1: d = g + 0.01·θ = (0.51, -0.52); buf = d; θ = θ − 0.1·buf.
  setGrad(p, {0.5, -0.5});
  setGrad(q, {1.0});
  sgd.step();
  BOOST_TEST(p[0].item<double>() == 1.0 - 0.1 * (0.5 + 0.01 * 1.0),
             boost::test_tools::tolerance(1e-15));
  BOOST_TEST(p[1].item<double>() == -2.0 - 0.1 * (-0.5 + 0.01 * -2.0),
             boost::test_tools::tolerance(1e-15));
  BOOST_TEST(q[0].item<double>() == 0.5 - 0.1 * (1.0 + 0.005), boost::test_tools::tolerance(1e-15));
  // Step 2 with lr 0.05: buf = 0.9·buf + d.
  const double p0 = p[0].item<double>();
  const double buf1 = 0.5 + 0.01 * 1.0;
  sgd.setLr(0.05);
  setGrad(p, {0.25, 0.0});
  setGrad(q, {0.0});
  sgd.step();
  const double buf2 = 0.9 * buf1 + (0.25 + 0.01 * p0);
  BOOST_TEST(p[0].item<double>() == p0 - 0.05 * buf2, boost::test_tools::tolerance(1e-15));
  const auto bufs = sgd.momentumBuffers();
  BOOST_TEST(bufs[0][0].item<double>() == buf2, boost::test_tools::tolerance(1e-15));
}

BOOST_AUTO_TEST_CASE(lr_zero_still_initialises_the_momentum_buffer) {
  // Step 0 of the reference: lr = 0, but the buffer takes g + wd·θ.
  auto p = leaf({3.0});
  meta::Sgd sgd({p}, 0.9, 1e-4);
  BOOST_TEST(!sgd.momentumBuffers()[0].defined());
  sgd.setLr(0.0);
  setGrad(p, {2.0});
  sgd.step();
  BOOST_TEST(p.item<double>() == 3.0);
  BOOST_TEST(sgd.momentumBuffers()[0].item<double>() == 2.0 + 3e-4,
             boost::test_tools::tolerance(1e-15));
}

BOOST_AUTO_TEST_CASE(momentum_buffers_round_trip) {
  auto a = leaf({1.0, 2.0});
  auto b = leaf({1.0, 2.0});
  meta::Sgd sa({a}, 0.9, 0.0), sb({b}, 0.9, 0.0);
  sa.setLr(0.1);
  sb.setLr(0.1);
  setGrad(a, {1.0, 1.0});
  sa.step();
  {
    torch::NoGradGuard noGrad;
    b.copy_(a);
  }
  sb.setMomentumBuffers(sa.momentumBuffers());
  for (int i = 0; i < 3; ++i) {
    setGrad(a, {0.1 * i, -0.3});
    setGrad(b, {0.1 * i, -0.3});
    sa.step();
    sb.step();
  }
  BOOST_TEST(torch::equal(a, b));
  // Restored buffers are copies, not aliases.
  BOOST_TEST(!sa.momentumBuffers()[0].is_same(sb.momentumBuffers()[0]));
  BOOST_CHECK_THROW(sb.setMomentumBuffers({}), core::IoError);
  BOOST_CHECK_THROW(sb.setMomentumBuffers({torch::zeros({3}, torch::kDouble)}), core::IoError);
  sb.setMomentumBuffers({torch::Tensor()});
  BOOST_TEST(!sb.momentumBuffers()[0].defined());
}

BOOST_AUTO_TEST_CASE(zero_grad_drops_gradients) {
  auto p = leaf({1.0});
  meta::Sgd sgd({p}, 0.9, 0.0);
  setGrad(p, {1.0});
  sgd.zeroGrad();
  BOOST_TEST(!p.grad().defined());
  sgd.setLr(1.0);
  sgd.step();  // no gradient: skipped, as PyTorch
  BOOST_TEST(p.item<double>() == 1.0);
}
