#include "metasemi/comm/Backend.h"

namespace metasemi::comm {

std::string toString(Backend b) {
  switch (b) {
    case Backend::kMpi:
      return "mpi";
    case Backend::kNccl:
      return "nccl";
    default:
      return "auto";
  }
}

}  // namespace metasemi::comm
