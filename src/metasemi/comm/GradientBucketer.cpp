#include "metasemi/comm/GradientBucketer.h"

#include <cmath>

#include "metasemi/core/Error.h"

namespace metasemi::comm {

GradientBucketer::GradientBucketer(std::size_t bucketBytes) : maxBytes_(bucketBytes) {
  MS_REQUIRE(bucketBytes > 0, core::ConfigError, "gradient bucket size must be positive");
}

std::size_t GradientBucketer::bucketBytes(std::size_t i) const {
  MS_CHECK(i < buckets_.size(), "bucket {} of {}", i, buckets_.size());
  return buckets_[i].flat.nbytes();
}

bool GradientBucketer::sameLayout(const std::vector<torch::Tensor>& tensors) const {
  if (tensors.size() != shapes_.size()) return false;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    if (t.scalar_type() != dtypes_[i] || t.device() != devices_[i] ||
        t.sizes().vec() != shapes_[i]) {
      return false;
    }
  }
  return true;
}

void GradientBucketer::layout(const std::vector<torch::Tensor>& tensors) {
  buckets_.clear();
  shapes_.clear();
  dtypes_.clear();
  devices_.clear();
  // Consecutive tensors of one dtype and device share a bucket until it would exceed maxBytes_;
  // keeping list order keeps the layout identical on every rank.
  std::vector<std::size_t> members;
  std::int64_t elements = 0;
  std::size_t bytes = 0;
  auto close = [&]() {
    if (members.empty()) return;
    const auto& first = tensors[members.front()];
    Bucket b;
    b.flat = torch::empty({elements}, first.options().requires_grad(false));
    std::int64_t off = 0;
    for (std::size_t m : members) {
      b.member.push_back(m);
      b.offset.push_back(off);
      off += tensors[m].numel();
    }
    buckets_.push_back(std::move(b));
    members.clear();
    elements = 0;
    bytes = 0;
  };
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    MS_CHECK(t.defined(), "tensor {} of the list is undefined", i);
    shapes_.push_back(t.sizes().vec());
    dtypes_.push_back(t.scalar_type());
    devices_.push_back(t.device());
    if (!members.empty()) {
      const auto& prev = tensors[members.back()];
      if (prev.scalar_type() != t.scalar_type() || prev.device() != t.device() ||
          bytes + t.nbytes() > maxBytes_) {
        close();
      }
    }
    members.push_back(i);
    elements += t.numel();
    bytes += t.nbytes();
  }
  close();
}

namespace {

// The part of `flat` that holds a member: `numel` elements from `offset`, with `t`'s shape and,
// when `t` is dense (e.g. channels-last), its strides, so that copies between the two are plain
// and a view used as `t` itself keeps `t`'s memory format.
torch::Tensor memberView(const torch::Tensor& flat, std::int64_t offset, const torch::Tensor& t) {
  const auto part = flat.narrow(0, offset, t.numel());
  if (t.is_non_overlapping_and_dense()) return part.as_strided(t.sizes(), t.strides());
  return part.view(t.sizes());
}

// True when `t` already is that part of the bucket (a view handed out by bucketViews()).
bool aliases(const torch::Tensor& t, const torch::Tensor& view) {
  return t.data_ptr() == view.data_ptr() && t.strides() == view.strides();
}

}  // namespace

void GradientBucketer::pack(Bucket& b, const std::vector<torch::Tensor>& tensors) const {
  torch::NoGradGuard noGrad;
  for (std::size_t k = 0; k < b.member.size(); ++k) {
    const auto& t = tensors[b.member[k]];
    auto view = memberView(b.flat, b.offset[k], t);
    if (!aliases(t, view)) view.copy_(t);
  }
}

void GradientBucketer::scale(Bucket& b, double divisor) {
  if (divisor == 1.0) return;
  torch::NoGradGuard noGrad;
  // Multiplying by 2^-k rounds exactly as dividing by 2^k (the scale is exact), and costs less.
  const bool powerOfTwo = std::exp2(std::round(std::log2(divisor))) == divisor;
  if (powerOfTwo) {
    b.flat.mul_(1.0 / divisor);
  } else {
    b.flat.div_(divisor);
  }
}

void GradientBucketer::reduceBucket(Communicator& comm, std::size_t i, bool average) {
  MS_CHECK(i < buckets_.size(), "bucket {} of {}", i, buckets_.size());
  Bucket& b = buckets_[i];
  // Called from a communication thread too: on the bucket's device.
  const c10::DeviceGuard onDevice(b.flat.device());
  comm.allreduce(b.flat, ReduceOp::kSum);
  scale(b, average ? static_cast<double>(comm.size()) : 1.0);
}

const std::vector<std::size_t>& GradientBucketer::bucketMembers(std::size_t i) const {
  MS_CHECK(i < buckets_.size(), "bucket {} of {}", i, buckets_.size());
  return buckets_[i].member;
}

void GradientBucketer::unpack(Bucket& b, const std::vector<torch::Tensor>& tensors,
                              double divisor) const {
  torch::NoGradGuard noGrad;
  bool allAliased = true;
  for (std::size_t k = 0; k < b.member.size(); ++k) {
    const auto& t = tensors[b.member[k]];
    allAliased = allAliased && aliases(t, memberView(b.flat, b.offset[k], t));
  }
  if (allAliased) {
    scale(b, divisor);
    return;
  }
  const auto d = torch::scalar_tensor(divisor, b.flat.options());
  for (std::size_t k = 0; k < b.member.size(); ++k) {
    const auto& t = tensors[b.member[k]];
    auto view = memberView(b.flat, b.offset[k], t);
    if (aliases(t, view)) {
      if (divisor != 1.0) view.div_(d);
    } else if (divisor != 1.0) {
      // One pass: divide while copying back.
      at::div_out(const_cast<torch::Tensor&>(t), view, d);
    } else {
      t.copy_(view);
    }
  }
}

std::vector<torch::Tensor> GradientBucketer::bucketViews(const std::vector<torch::Tensor>& like) {
  if (!sameLayout(like)) layout(like);
  std::vector<torch::Tensor> views(like.size());
  for (auto& b : buckets_) {
    for (std::size_t k = 0; k < b.member.size(); ++k) {
      views[b.member[k]] = memberView(b.flat, b.offset[k], like[b.member[k]]);
    }
  }
  return views;
}

void GradientBucketer::allreduce(Communicator& comm, const std::vector<torch::Tensor>& tensors,
                                 bool average) {
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    MS_CHECK(t.defined(), "gradient {} of the list is undefined", i);
    MS_CHECK(t.scalar_type() == torch::kFloat || t.scalar_type() == torch::kDouble,
             "gradient {} has dtype {}; float32 or float64 expected", i,
             c10::toString(t.scalar_type()));
  }
  if (!sameLayout(tensors)) layout(tensors);
  for (auto& b : buckets_) {
    pack(b, tensors);
    comm.allreduce(b.flat, ReduceOp::kSum);
    // Sum first, then one division: for two ranks this is exactly (a + b) / 2.
    unpack(b, tensors, average ? static_cast<double>(comm.size()) : 1.0);
  }
}

void GradientBucketer::broadcast(Communicator& comm, const std::vector<torch::Tensor>& tensors,
                                 int root) {
  if (!sameLayout(tensors)) layout(tensors);
  for (auto& b : buckets_) {
    if (comm.rank() == root) pack(b, tensors);
    comm.broadcast(b.flat, root);
    if (comm.rank() != root) unpack(b, tensors, 1.0);
  }
}

void broadcastModule(Communicator& comm, torch::nn::Module& module) {
  std::vector<torch::Tensor> tensors;
  for (const auto& p : module.named_parameters(true)) tensors.push_back(p.value());
  for (const auto& b : module.named_buffers(true)) tensors.push_back(b.value());
  if (tensors.empty() || comm.size() == 1) return;
  GradientBucketer bucketer;
  bucketer.broadcast(comm, tensors, 0);
}

}  // namespace metasemi::comm
