// The names of the steps this library runs, without the step itself (no torch), so that
// settings and programs can name a step kind cheaply.
#pragma once

#include <string>

namespace metasemi::meta {

/// Which step runs.
enum class StepKind {
  kMetaMixUp,    ///< train_meta.py --mix-up (the README recipe)
  kMeta,         ///< train_meta.py without --mix-up ("meta only")
  kLabeledOnly,  ///< train_baseline.py
  kMixUpOnly,    ///< train_baseline.py --mix-up (no meta update, no consistency term)
};

/// How the pseudo-label direction J·g is computed.
enum class MetaGrad { kFiniteDifference, kExact };

/// True for the kinds that read an unlabeled batch.
inline bool usesUnlabeled(StepKind k) { return k != StepKind::kLabeledOnly; }
/// True for the kinds that mix labeled and unlabeled images.
inline bool usesMixUp(StepKind k) { return k == StepKind::kMetaMixUp || k == StepKind::kMixUpOnly; }
/// True for the kinds with the meta phase (pseudo-label update).
inline bool usesMetaPhase(StepKind k) { return k == StepKind::kMetaMixUp || k == StepKind::kMeta; }

/// "meta+mix-up", "meta", "labeled-only", "mix-up-only".
std::string toString(StepKind k);
/// "fd" or "exact" (the spellings of --meta-grad).
std::string toString(MetaGrad m);

}  // namespace metasemi::meta
