#include "metasemi/meta/StepKind.h"

namespace metasemi::meta {

std::string toString(StepKind k) {
  switch (k) {
    case StepKind::kMetaMixUp:
      return "meta+mix-up";
    case StepKind::kMeta:
      return "meta";
    case StepKind::kLabeledOnly:
      return "labeled-only";
    case StepKind::kMixUpOnly:
      return "mix-up-only";
  }
  return "?";
}

std::string toString(MetaGrad m) { return m == MetaGrad::kExact ? "exact" : "fd"; }

}  // namespace metasemi::meta
