// Gradient averaging and parameter broadcast in few large messages: the tensors are copied into
// contiguous flat buffers ("buckets") of about a configured size, one collective per bucket, and
// copied back. The buffers are kept between calls, so a training step allocates nothing.
#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "metasemi/comm/Communicator.h"

namespace metasemi::comm {

class GradientBucketer {
 public:
  /// 25 MiB, as PyTorch DDP's default bucket size.
  static constexpr std::size_t kDefaultBucketBytes = std::size_t{25} << 20;

  /// `bucketBytes`: the most bytes per bucket; a tensor larger than that gets a bucket alone.
  explicit GradientBucketer(std::size_t bucketBytes = kDefaultBucketBytes);

  /// Collective: replaces every tensor by its sum over ranks, divided by the number of ranks
  /// when `average`. `tensors`: any shapes, each float32 or float64 (bucketed by dtype and
  /// device), on the device the communicator reduces (CPU for MPI); the same list (shapes,
  /// dtypes, order) on every rank. The bucket layout is built at the first call and reused while
  /// the list keeps its shapes.
  void allreduce(Communicator& comm, const std::vector<torch::Tensor>& tensors,
                 bool average = true);

  /// Collective: copies `root`'s tensors into every rank's tensors, in place. `tensors`: any
  /// shapes and dtypes (float, integer and bool buffers alike), same list on every rank.
  void broadcast(Communicator& comm, const std::vector<torch::Tensor>& tensors, int root = 0);

  /// Builds the layout for `like` (as allreduce() would) and returns one view into the flat
  /// buckets per tensor, with its shape and, for a dense tensor (contiguous or channels-last),
  /// its strides. Used as the gradients themselves
  /// (`param.mutable_grad() = view`; autograd then accumulates into them in place), they make
  /// allreduce() copy nothing: only the reduction and the division remain. Their values are
  /// undefined until written. The views stay valid while the layout does.
  std::vector<torch::Tensor> bucketViews(const std::vector<torch::Tensor>& like);

  /// Collective: sums bucket `i` over ranks in place, then divides by the number of ranks when
  /// `average`, with allreduce()'s arithmetic. For gradients that are the bucketViews() views
  /// (nothing to copy); one bucket at a time, in the same order on every rank.
  void reduceBucket(Communicator& comm, std::size_t i, bool average = true);
  /// The indices (into the list of the layout) of the tensors in bucket `i`.
  const std::vector<std::size_t>& bucketMembers(std::size_t i) const;

  /// Number of buckets of the current layout (0 before the first call).
  std::size_t numBuckets() const { return buckets_.size(); }
  /// Bytes in bucket `i`.
  std::size_t bucketBytes(std::size_t i) const;

 private:
  struct Bucket {
    torch::Tensor flat;                // 1-d, the bucket's dtype and device
    std::vector<std::size_t> member;   // indices into the tensor list
    std::vector<std::int64_t> offset;  // element offset of each member in `flat`
  };
  void layout(const std::vector<torch::Tensor>& tensors);
  bool sameLayout(const std::vector<torch::Tensor>& tensors) const;
  void pack(Bucket& b, const std::vector<torch::Tensor>& tensors) const;
  void unpack(Bucket& b, const std::vector<torch::Tensor>& tensors, double divisor) const;
  static void scale(Bucket& b, double divisor);

  std::size_t maxBytes_;
  std::vector<Bucket> buckets_;
  // The layout's key: shape, dtype and device of every tensor.
  std::vector<std::vector<std::int64_t>> shapes_;
  std::vector<torch::ScalarType> dtypes_;
  std::vector<torch::Device> devices_;
};

/// Collective: copies rank 0's parameters and buffers (in named_parameters()/named_buffers()
/// order) into every rank's `module`, in few messages. Every rank holds the same architecture.
void broadcastModule(Communicator& comm, torch::nn::Module& module);

}  // namespace metasemi::comm
