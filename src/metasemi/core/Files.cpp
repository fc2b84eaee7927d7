#include "metasemi/core/Files.h"

#include <fmt/format.h>

#include "metasemi/core/Error.h"

namespace metasemi::core {
namespace fs = std::filesystem;

namespace {

std::string named(const fs::path& path, const std::string& what) {
  return what.empty() ? path.string() : what + " " + path.string();
}

}  // namespace

std::string fileProblem(const fs::path& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  switch (st.type()) {
    case fs::file_type::regular:
      return "";
    case fs::file_type::not_found:
      return "no such file";
    case fs::file_type::directory:
      return "is a folder, expected a file";
    case fs::file_type::none:
      return "cannot access: " + ec.message();
    default:
      return "not a regular file";
  }
}

void requireFile(const fs::path& path, const std::string& what) {
  const std::string problem = fileProblem(path);
  MS_REQUIRE(problem.empty(), IoError, "{}: {}", named(path, what), problem);
}

void requireFolder(const fs::path& path, const std::string& what) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  switch (st.type()) {
    case fs::file_type::directory:
      return;
    case fs::file_type::not_found:
      MS_THROW(IoError, "{}: no such folder", named(path, what));
    case fs::file_type::none:
      MS_THROW(IoError, "{}: cannot access: {}", named(path, what), ec.message());
    default:
      MS_THROW(IoError, "{}: is a file, expected a folder", named(path, what));
  }
}

std::string describeError(const std::exception& e) {
  if (const auto* fe = dynamic_cast<const fs::filesystem_error*>(&e)) {
    std::string where = fe->path1().string();
    if (!fe->path2().empty()) where += " -> " + fe->path2().string();
    if (where.empty()) return fe->code().message();
    return fmt::format("{}: {}", where, fe->code().message());
  }
  return e.what();
}

}  // namespace metasemi::core
