#include "metasemi/core/Error.h"

namespace metasemi::core {

int exitCodeFor(const std::exception& e) noexcept {
  if (dynamic_cast<const ConfigError*>(&e)) return kExitConfig;
  if (dynamic_cast<const IoError*>(&e)) return kExitIo;
  if (dynamic_cast<const CommError*>(&e)) return kExitComm;
  if (dynamic_cast<const NumericalError*>(&e)) return kExitNumerical;
  return kExitError;
}

namespace detail {
void failCheck(const char* expr, const char* file, int line, const std::string& msg) {
  throw Error(fmt::format("{} (check `{}` failed at {}:{})", msg, expr, file, line));
}
}  // namespace detail

}  // namespace metasemi::core
