#include "metasemi/io/Hdf5.h"

#include <mutex>

#include "metasemi/io/Hdf5Check.h"

namespace metasemi::io {

std::string hdf5Version() {
  unsigned major = 0, minor = 0, release = 0;
  MS_H5_CHECK(H5get_libversion(&major, &minor, &release), "HDF5 version");
  return fmt::format("{}.{}.{}", major, minor, release);
}

void silenceHdf5Errors() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

namespace detail {

std::string hdf5ErrorStack() {
  std::string out;
  auto walker = [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
    auto* s = static_cast<std::string*>(data);
    if (e->desc && *e->desc) {
      if (!s->empty()) *s += "; ";
      *s += e->desc;
    }
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walker, &out);
  H5Eclear2(H5E_DEFAULT);
  return out;
}

void throwHdf5Error(const char* expr, const std::string& context, const char* file, int line) {
  const std::string stack = hdf5ErrorStack();
  throw core::IoError(fmt::format("{}: HDF5 error in {}{}{} ({}:{})", context, expr,
                                  stack.empty() ? "" : ": ", stack, file, line));
}

}  // namespace detail
}  // namespace metasemi::io
