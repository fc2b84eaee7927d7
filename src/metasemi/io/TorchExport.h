// Checkpoints in the files PyTorch users read: the reference's `checkpoint.pth` (torch.save's zip
// archive: `data.pkl` + one `data/<n>` record per tensor, readable by torch.load, also with
// weights_only=True from PyTorch 2.0 on; 1.13's weights-only reader takes no float at all) and
// safetensors (8-byte little-endian header length, a JSON header {name: {dtype, shape,
// data_offsets}, "__metadata__": {str: str}}, then the raw bytes). The pickle uses only what
// torch.save itself writes (dict, collections.OrderedDict, torch._utils._rebuild_tensor_v2,
// torch.<Type>Storage): loading it calls none of TorchScript's torch.jit._pickle functions, which
// weights_only=True refuses. Both writers replace their file atomically (temporary name, fsync,
// rename).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "metasemi/io/Checkpoint.h"

namespace metasemi::io {

/// One torch.optim.SGD parameter group as its state_dict() holds it.
struct SgdGroup {
  double lr = 0.1;
  double momentum = 0.9;
  double dampening = 0.0;
  double weightDecay = 1e-4;
  bool nesterov = false;
};

/// The reference's checkpoint dict (train_meta.py's save_checkpoint):
/// {'step': int, 'model': state_dict, 'best_acc': float, 'optimizer': SGD state_dict}.
struct ReferenceCheckpoint {
  std::int64_t step = 0;  ///< steps completed ('step')
  double bestAcc = 0.0;   ///< best top-1 test accuracy in percent ('best_acc')
  /// state_dict entries in order ('model', an OrderedDict): any shapes; bool, uint8, int8,
  /// int16, int32, int64, float16, bfloat16, float32 or float64; any device (written as
  /// contiguous CPU tensors of the same dtype).
  NamedTensors model;
  /// Names of model.parameters() in order: the optimizer's parameter indices 0, 1, ... Each
  /// must be a key of `model`.
  std::vector<std::string> parameters;
  /// Momentum buffers by parameter name (same shape and dtype as the parameter); parameters
  /// without one have no entry in the optimizer's 'state'.
  NamedTensors momentum;
  SgdGroup sgd;
};

/// Writes `checkpoint` to `path` in torch.save's format (zip archive, pickle protocol 2).
/// Throws core::IoError when the file cannot be written (naming it) and core::ConfigError for
/// content that has no such form (an unknown parameter or momentum name, a shape mismatch, an
/// unsupported dtype). Nothing is left under `path` on error.
void writeTorchCheckpoint(const std::string& path, const ReferenceCheckpoint& checkpoint);

/// Writes `tensors` (dtypes as ReferenceCheckpoint::model; unique names) with `metadata` as the
/// header's "__metadata__" to `path` in the safetensors format. Throws as writeTorchCheckpoint().
void writeSafetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata);

}  // namespace metasemi::io
