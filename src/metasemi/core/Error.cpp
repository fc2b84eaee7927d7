#include "metasemi/core/Error.h"

#include <filesystem>

namespace metasemi::core {

int exitCodeFor(const std::exception& e) noexcept {
  if (dynamic_cast<const ConfigError*>(&e)) return kExitConfig;
  if (dynamic_cast<const IoError*>(&e)) return kExitIo;
  if (dynamic_cast<const CommError*>(&e)) return kExitComm;
  if (dynamic_cast<const NumericalError*>(&e)) return kExitNumerical;
  // A path that cannot be read (permission, a loop of links) is bad input, as IoError is.
  if (dynamic_cast<const std::filesystem::filesystem_error*>(&e)) return kExitIo;
  return kExitError;
}

namespace detail {
void failCheck(const char* expr, const char* file, int line, const std::string& msg) {
  throw Error(fmt::format("{} (check `{}` failed at {}:{})", msg, expr, file, line));
}
}  // namespace detail

}  // namespace metasemi::core
