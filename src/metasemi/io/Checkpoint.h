// Training checkpoints in HDF5. Layout (format version 1):
//   attributes on "/": format = "metasemi-checkpoint", format_version, step (steps completed,
//     the step a resumed run starts at), best_acc1, best_acc5, last_acc1, last_acc5 (percent),
//     config (the resolved configuration text)
//   /model/<state_dict key>                      parameters and buffers (attribute "keys": order)
//   /optimizer/momentum_buffer/<parameter name>  SGD momentum buffers (attribute "keys")
//   /rng/torch   uint8 bytes of the torch CPU generator state (absent when not saved)
//   /rng/words   int64 bit patterns of the project's core::Rng states
//   /data/state  int64 data-stream words; attribute "json" on /data: a JSON string
// so that `h5py.File(p)["model"]` + `torch.from_numpy` loads the parameters into the PyTorch
// model. Files are written by rank 0 under a temporary name and renamed when complete.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace metasemi::io {

class H5File;

/// Named tensors in a fixed order, e.g. a state_dict: (key, tensor).
using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

/// Everything a run needs to continue exactly where it stopped.
struct CheckpointState {
  static constexpr std::int64_t kFormatVersion = 1;

  std::int64_t step = 0;  ///< steps completed
  double bestAcc1 = 0.0;  ///< best test top-1 accuracy so far (percent)
  double bestAcc5 = 0.0;  ///< top-5 accuracy of the best evaluation (percent)
  double lastAcc1 = 0.0;  ///< top-1 accuracy of the last evaluation (percent)
  double lastAcc5 = 0.0;  ///< top-5 accuracy of the last evaluation (percent)
  /// state_dict entries: any shapes, uint8/int32/int64/float32/float64, any device (copied to
  /// the CPU when written; CPU tensors when read).
  NamedTensors model;
  /// SGD momentum buffers by parameter name (parameters without a buffer are left out).
  NamedTensors momentum;
  /// torch CPU generator state (torch::Generator::get_state()): 1-d uint8 CPU tensor, or
  /// undefined when not saved.
  torch::Tensor torchRng;
  /// States of the project's core::Rng generators.
  std::vector<std::uint64_t> rngWords;
  /// Opaque data-stream state words (stream positions, pass counters, ...).
  std::vector<std::int64_t> dataState;
  /// Opaque data-stream state as JSON text ("" when unused).
  std::string dataJson;
  /// The resolved configuration text.
  std::string config;
};

/// Writes `state` to `path` atomically (temporary name, fsync, rename): an interrupted write
/// never leaves a file under `path` that looks valid. Call on rank 0 only. Throws IoError.
void writeCheckpoint(const std::string& path, const CheckpointState& state);

/// Writes `<dir>/checkpoint.h5` and, when `isBest`, makes `<dir>/model_best.h5` a hard link to
/// the same new file (a copy where the file system has no hard links), each replaced
/// atomically. Call on rank 0 only.
void writeCheckpointFiles(const std::string& dir, const CheckpointState& state, bool isBest);

/// Reads and validates a checkpoint: an HDF5 file with the format attribute, a format version
/// this program reads, and every required dataset. Throws IoError with one line naming the file
/// and what is wrong (missing, truncated, another format or version).
CheckpointState readCheckpoint(const std::string& path);

/// Writes `tensors` as datasets `<group>/<key>` (standard row-major layout whatever the memory
/// format; "" or "/" is the file's root) with the keys' order in the group's attribute "keys".
/// This is the one HDF5 form of a state dict: checkpoints, step-check files and models alike.
/// Throws core::IoError for a name that cannot be a dataset or a dataset that already exists.
void writeNamedTensors(H5File& file, const std::string& group, const NamedTensors& tensors);

/// Reads the datasets of `group` as written by writeNamedTensors(): in the order of its "keys"
/// attribute, followed by datasets the attribute does not list (files written by h5py have no
/// such attribute). CPU tensors. Throws core::IoError for a missing group.
NamedTensors readNamedTensors(const H5File& file, const std::string& group);

/// Strictly copies `stored` (as read) into the live `target` tensors in place, converting to
/// each target's dtype and device. Every key of `target` must be stored with the same shape and
/// no stored key may be unknown; otherwise IoError: "checkpoint '<path>' does not match the
/// <what>: ..." naming the first differing key and both shapes. Nothing is modified on error.
void restoreNamed(const NamedTensors& stored, const NamedTensors& target, const std::string& path,
                  const std::string& what);

}  // namespace metasemi::io
