#include "metasemi/io/RunDir.h"

#include <fmt/format.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "metasemi/core/Error.h"
#include "metasemi/io/H5File.h"

namespace metasemi::io {
namespace fs = std::filesystem;

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::string shorten(const std::string& s) { return s.size() <= 80 ? s : s.substr(0, 77) + "..."; }

void writeAtomically(const fs::path& path, const std::string& text) {
  AtomicOutput out(path.string());
  {
    std::ofstream f(out.tempPath());
    f << text;
    f.flush();
    MS_REQUIRE(f.good(), core::IoError, "cannot write '{}'", out.tempPath());
  }
  out.commit();
}

std::string readWhole(const fs::path& path, const char* hint) {
  MS_REQUIRE(fs::is_regular_file(path), core::IoError, "{}: missing ({})", path.string(), hint);
  std::ifstream in(path);
  MS_REQUIRE(in, core::IoError, "{}: cannot read", path.string());
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

}  // namespace

void requireWritableFolder(const fs::path& dir, const std::string& what, bool create) {
  std::error_code ec;
  if (create) {
    fs::create_directories(dir, ec);
    MS_REQUIRE(!ec, core::IoError, "{}: cannot create folder '{}': {}", what, dir.string(),
               ec.message());
  }
  MS_REQUIRE(fs::is_directory(dir, ec), core::IoError, "{}: no folder '{}'", what, dir.string());
  const fs::path probe = dir / fmt::format(".write-test.{}", ::getpid());
  { std::ofstream(probe) << "x"; }
  const bool ok = fs::exists(probe, ec);
  fs::remove(probe, ec);
  MS_REQUIRE(ok, core::IoError, "{}: folder '{}' is not writable", what, dir.string());
}

bool RunDir::isRunDir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / kConfig, ec);
}

void RunDir::prepare() const { requireWritableFolder(dir_, "--save-path", true); }

void RunDir::writeConfig(const std::string& text) const { writeAtomically(path(kConfig), text); }

void RunDir::writeLabelIndices(const std::vector<std::int64_t>& indices) const {
  std::string s;
  s.reserve(indices.size() * 6);
  for (auto i : indices) s += std::to_string(i) + '\n';
  writeAtomically(path(kLabelIndices), s);
}

void RunDir::appendMetrics(const nlohmann::json& row) const {
  std::ofstream f(path(kMetrics), std::ios::app);
  f << row.dump() << '\n';
  f.flush();
  MS_REQUIRE(f.good(), core::IoError, "cannot append to '{}'", path(kMetrics).string());
}

std::string RunDir::readConfig() const {
  return readWhole(path(kConfig),
                   "not a run directory: the trainer writes config.cfg in --save-path");
}

std::vector<RunDir::MetricsRow> RunDir::readMetrics() const {
  const fs::path file = path(kMetrics);
  MS_REQUIRE(fs::is_regular_file(file), core::IoError,
             "{}: missing (the trainer writes metrics.jsonl in --save-path)", file.string());
  std::ifstream in(file);
  MS_REQUIRE(in, core::IoError, "{}: cannot read", file.string());
  std::vector<MetricsRow> rows;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (trim(line).empty()) continue;
    MetricsRow row;
    row.line = number;
    try {
      row.value = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      MS_THROW(core::IoError, "{}:{}: not a JSON object: '{}'", file.string(), number,
               shorten(trim(line)));
    }
    MS_REQUIRE(row.value.is_object() && row.value.contains("kind") && row.value["kind"].is_string(),
               core::IoError, "{}:{}: expected an object with a \"kind\" string, found '{}'",
               file.string(), number, shorten(trim(line)));
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<std::int64_t> RunDir::readLabelIndices() const {
  std::istringstream in(readWhole(path(kLabelIndices), "the trainer writes it in --save-path"));
  std::vector<std::int64_t> out;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string t = trim(line);
    if (t.empty()) continue;
    std::size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(t, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    MS_REQUIRE(used == t.size() && v >= 0, core::IoError,
               "{}:{}: expected a non-negative index, found '{}'", path(kLabelIndices).string(),
               number, shorten(t));
    out.push_back(v);
  }
  return out;
}

}  // namespace metasemi::io
