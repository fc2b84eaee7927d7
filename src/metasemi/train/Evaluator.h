// Distributed evaluation over one split: every rank runs the network on its share of the images
// and the counts (confusion matrix, top-k hits) are summed over ranks. Used by the trainer at
// every --test-freq and by metasemi-eval.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>

#include "metasemi/comm/Communicator.h"
#include "metasemi/data/Augment.h"
#include "metasemi/data/Loader.h"
#include "metasemi/data/SampleSource.h"
#include "metasemi/models/Network.h"
#include "metasemi/train/EvalCounts.h"

namespace metasemi::train {

struct EvaluatorOptions {
  std::int64_t batchSize = 100;  ///< images per forward and rank
  std::int64_t topK = 5;         ///< k of the top-k error (at most the number of classes used)
  data::LoaderOptions loader{2, 4};
  bool channelsLast = true;  ///< feed channels-last images (the trainer's layout)
};

class Evaluator {
 public:
  /// `split`: the images and labels to evaluate; `augment`: the evaluation transform;
  /// `device`: where the network lives (the batches are moved there).
  Evaluator(std::shared_ptr<const data::SampleSource> split, data::AugmentConfig augment,
            torch::Device device, EvaluatorOptions options = {});

  /// Collective: one pass of `net` in eval mode without gradients over this rank's share of the
  /// split (ranks take contiguous ranges), counts summed over the ranks of `comm`. Leaves `net`
  /// in eval mode. Ties in the scores resolve as torch::topk does.
  EvalCounts run(models::Network& net, comm::Communicator& comm) const;

 private:
  std::shared_ptr<const data::SampleSource> split_;
  data::AugmentConfig augment_;
  torch::Device device_;
  EvaluatorOptions options_;
};

}  // namespace metasemi::train
