#include "metasemi/meta/Sgd.h"

#include <fmt/ranges.h>

#include <memory>
#include <sstream>
#include <string>
#include <type_traits>

#include "metasemi/core/Error.h"

namespace metasemi::meta {
namespace {

// torch::optim::SGD keys its per-parameter state by the address of the TensorImpl: as text in
// LibTorch 1.x, as the pointer itself in 2.x.
using StateKey = std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>::key_type;

template <typename Key>
Key keyOf(const torch::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream os;
    os << p.unsafeGetTensorImpl();
    return os.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

StateKey stateKey(const torch::Tensor& p) { return keyOf<StateKey>(p); }

}  // namespace

Sgd::Sgd(std::vector<torch::Tensor> params, double momentum, double weightDecay)
    : params_(params),
      optimizer_(std::move(params), torch::optim::SGDOptions(0.0)
                                        .momentum(momentum)
                                        .weight_decay(weightDecay)
                                        .dampening(0.0)
                                        .nesterov(false)) {}

void Sgd::setLr(double lr) {
  for (auto& group : optimizer_.param_groups()) {
    static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
  }
}

double Sgd::lr() const {
  return static_cast<const torch::optim::SGDOptions&>(optimizer_.param_groups().front().options())
      .lr();
}

void Sgd::zeroGrad() {
  if (gradientsInPlace_) {
    torch::NoGradGuard noGrad;
    for (auto& p : params_) p.mutable_grad().zero_();
    return;
  }
  for (auto& p : params_) p.mutable_grad() = torch::Tensor();
}

void Sgd::setGradientStorage(const std::vector<torch::Tensor>& storage) {
  MS_REQUIRE(storage.size() == params_.size(), core::ConfigError,
             "gradient storage: {} tensors for {} parameters", storage.size(), params_.size());
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const auto& p = params_[i];
    const auto& g = storage[i];
    MS_REQUIRE(g.sizes() == p.sizes() && g.strides() == p.strides() &&
                   g.scalar_type() == p.scalar_type() && g.device() == p.device(),
               core::ConfigError, "gradient storage {} does not match its parameter's layout", i);
    params_[i].mutable_grad() = g;
  }
  gradientsInPlace_ = true;
  zeroGrad();
}

void Sgd::step() { optimizer_.step(); }

std::vector<torch::Tensor> Sgd::momentumBuffers() const {
  std::vector<torch::Tensor> out;
  out.reserve(params_.size());
  const auto& state = optimizer_.state();
  for (const auto& p : params_) {
    const auto it = state.find(stateKey(p));
    out.push_back(
        it == state.end()
            ? torch::Tensor()
            : static_cast<const torch::optim::SGDParamState&>(*it->second).momentum_buffer());
  }
  return out;
}

void Sgd::setMomentumBuffers(const std::vector<torch::Tensor>& buffers) {
  MS_REQUIRE(buffers.size() == params_.size(), core::IoError,
             "SGD state: expected {} momentum buffers, found {}", params_.size(), buffers.size());
  auto& state = optimizer_.state();
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const auto key = stateKey(params_[i]);
    if (!buffers[i].defined()) {
      state.erase(key);
      continue;
    }
    MS_REQUIRE(buffers[i].sizes() == params_[i].sizes(), core::IoError,
               "SGD state: momentum buffer {} has shape [{}], expected [{}]", i,
               fmt::join(buffers[i].sizes().vec(), ", "),
               fmt::join(params_[i].sizes().vec(), ", "));
    torch::NoGradGuard noGrad;
    auto buf = torch::empty_like(params_[i]).copy_(buffers[i].detach());
    auto s = std::make_unique<torch::optim::SGDParamState>();
    s->momentum_buffer(buf);
    state[key] = std::move(s);
  }
}

}  // namespace metasemi::meta
