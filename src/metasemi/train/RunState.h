// Where a run stands between steps, and its mapping to and from a checkpoint. With the random
// numbers named by (seed, step) (meta::StepRandom), this and the model and optimizer state are
// all an exact resume needs.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "metasemi/data/IndexStream.h"
#include "metasemi/io/Checkpoint.h"
#include "metasemi/meta/Sgd.h"
#include "metasemi/models/Network.h"
#include "metasemi/train/TrainConfig.h"

namespace metasemi::train {

struct RunState {
  std::int64_t nextStep = 0;  ///< steps completed: the step a resumed run starts at
  double bestTop1Error = std::numeric_limits<double>::infinity();  ///< percent
  double bestTop5Error = std::numeric_limits<double>::infinity();  ///< of the best evaluation
  double lastTop1Error = std::numeric_limits<double>::quiet_NaN();
  double lastTop5Error = std::numeric_limits<double>::quiet_NaN();
  int worldSize = 1;  ///< ranks of the run that wrote the state
  std::optional<data::StreamState> labeledStream, unlabeledStream;

  /// Records an evaluation; returns true when its top-1 error is strictly better than the best
  /// so far (always true for the first one).
  bool recordEvaluation(double top1Error, double top5Error);

  /// The checkpoint of this state with `net`'s parameters and buffers, `sgd`'s momentum buffers
  /// (by parameter name) and the resolved configuration text. Tensors stay where they are
  /// (written from any device).
  io::CheckpointState toCheckpoint(const models::Network& net, const meta::Sgd& sgd,
                                   const std::string& configText) const;

  /// Restores `net` and `sgd` from checkpoint `stored` (read from `path`, named in messages),
  /// copying onto their device, and returns the run state it holds. Throws core::IoError when
  /// the file was not written by the trainer or does not match the model; nothing is modified
  /// then.
  static RunState restore(const io::CheckpointState& stored, const std::string& path,
                          models::Network& net, meta::Sgd& sgd);
};

/// The configuration a checkpoint was trained with (its `config` attribute). A damaged one is a
/// damaged file: core::IoError naming `path`, not a flag error.
TrainConfig checkpointConfig(const io::CheckpointState& stored, const std::string& path);

/// Throws core::IoError naming `path` and the first tensor of `tensors` that holds a NaN or an
/// infinity: such a model evaluates to numbers that look plausible and mean nothing.
void requireFiniteTensors(const io::NamedTensors& tensors, const std::string& path,
                          const std::string& what);

}  // namespace metasemi::train
