#include "metasemi/dist/GradientBucketer.h"

#include "metasemi/core/Error.h"

namespace metasemi::dist {

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

void GradientBucketer::pack(Bucket& b, const std::vector<torch::Tensor>& tensors) const {
  torch::NoGradGuard noGrad;
  for (std::size_t k = 0; k < b.member.size(); ++k) {
    const auto& t = tensors[b.member[k]];
    b.flat.narrow(0, b.offset[k], t.numel()).view(t.sizes()).copy_(t);
  }
}

void GradientBucketer::unpack(Bucket& b, const std::vector<torch::Tensor>& tensors) const {
  torch::NoGradGuard noGrad;
  for (std::size_t k = 0; k < b.member.size(); ++k) {
    const auto& t = tensors[b.member[k]];
    t.copy_(b.flat.narrow(0, b.offset[k], t.numel()).view(t.sizes()));
  }
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
    if (average && comm.size() > 1) b.flat.div_(static_cast<double>(comm.size()));
    unpack(b, tensors);
  }
}

void GradientBucketer::broadcast(Communicator& comm, const std::vector<torch::Tensor>& tensors,
                                 int root) {
  if (!sameLayout(tensors)) layout(tensors);
  for (auto& b : buckets_) {
    if (comm.rank() == root) pack(b, tensors);
    comm.broadcast(b.flat, root);
    if (comm.rank() != root) unpack(b, tensors);
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

}  // namespace metasemi::dist
