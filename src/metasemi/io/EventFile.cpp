#include "metasemi/io/EventFile.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>

#include "metasemi/core/Error.h"
#include "metasemi/core/Files.h"
#include "metasemi/io/H5File.h"

namespace fs = std::filesystem;

namespace metasemi::io {
namespace {

constexpr const char* kPrefix = "events.out.tfevents.";
constexpr const char* kFileVersion = "brain.Event:2";

std::array<std::uint32_t, 256> makeCrcTable() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}

std::uint32_t maskedCrc(const void* data, std::size_t size) {
  const std::uint32_t c = crc32c(data, size);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

// --- protocol buffer encoding ---

void putVarint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void putKey(std::string& out, int field, int wireType) {
  putVarint(out, static_cast<std::uint64_t>(field) << 3 | static_cast<std::uint64_t>(wireType));
}

template <typename T>
void putFixed(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // little-endian hosts only (x86-64, aarch64)
  out.append(b, sizeof(T));
}

void putBytes(std::string& out, int field, const std::string& bytes) {
  putKey(out, field, 2);
  putVarint(out, bytes.size());
  out += bytes;
}

std::string encodeEvent(double wallTime, std::int64_t step, const std::string& fileVersion,
                        const std::vector<Scalar>& scalars) {
  std::string event;
  putKey(event, 1, 1);
  putFixed(event, wallTime);
  if (step != 0) {
    putKey(event, 2, 0);
    putVarint(event, static_cast<std::uint64_t>(step));
  }
  if (!fileVersion.empty()) putBytes(event, 3, fileVersion);
  if (!scalars.empty()) {
    std::string summary;
    for (const auto& [tag, value] : scalars) {
      std::string v;
      putBytes(v, 1, tag);
      putKey(v, 2, 5);
      putFixed(v, static_cast<float>(value));
      putBytes(summary, 1, v);
    }
    putBytes(event, 5, summary);
  }
  return event;
}

std::string frame(const std::string& data) {
  std::string out;
  const std::uint64_t n = data.size();
  putFixed(out, n);
  putFixed(out, maskedCrc(out.data(), 8));
  out += data;
  putFixed(out, maskedCrc(data.data(), data.size()));
  return out;
}

// --- protocol buffer decoding (bounds-checked; a failure names what was wrong) ---

class Decoder {
 public:
  Decoder(const char* p, std::size_t n) : p_(p), end_(p + n) {}
  bool done() const { return p_ == end_; }

  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      need(1);
      const auto b = static_cast<unsigned char>(*p_++);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw core::IoError("a varint longer than 10 bytes");
  }
  template <typename T>
  T fixed() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, p_, sizeof(T));
    p_ += sizeof(T);
    return v;
  }
  Decoder sub() {
    const std::uint64_t n = varint();
    need(n);
    Decoder d(p_, static_cast<std::size_t>(n));
    p_ += n;
    return d;
  }
  std::string bytes() {
    Decoder d = sub();
    return std::string(d.p_, d.end_);
  }
  void skip(int wireType) {
    switch (wireType) {
      case 0:
        varint();
        break;
      case 1:
        need(8);
        p_ += 8;
        break;
      case 2:
        sub();
        break;
      case 5:
        need(4);
        p_ += 4;
        break;
      default:
        throw core::IoError(fmt::format("unsupported protocol buffer wire type {}", wireType));
    }
  }

 private:
  void need(std::uint64_t n) const {
    if (n > static_cast<std::uint64_t>(end_ - p_))
      throw core::IoError("a field runs past its message");
  }
  const char* p_;
  const char* end_;
};

Scalar decodeValue(Decoder d, bool& isScalar) {
  Scalar s;
  isScalar = false;
  while (!d.done()) {
    const std::uint64_t key = d.varint();
    const int field = static_cast<int>(key >> 3), wt = static_cast<int>(key & 7);
    if (field == 1 && wt == 2) {
      s.first = d.bytes();
    } else if (field == 2 && wt == 5) {
      s.second = d.fixed<float>();
      isScalar = true;
    } else {
      d.skip(wt);
    }
  }
  return s;
}

Event decodeEvent(Decoder d) {
  Event e;
  while (!d.done()) {
    const std::uint64_t key = d.varint();
    const int field = static_cast<int>(key >> 3), wt = static_cast<int>(key & 7);
    if (field == 1 && wt == 1) {
      e.wallTime = d.fixed<double>();
    } else if (field == 2 && wt == 0) {
      e.step = static_cast<std::int64_t>(d.varint());
    } else if (field == 3 && wt == 2) {
      e.fileVersion = d.bytes();
    } else if (field == 5 && wt == 2) {
      Decoder summary = d.sub();
      while (!summary.done()) {
        const std::uint64_t k = summary.varint();
        if (k >> 3 == 1 && (k & 7) == 2) {
          bool isScalar = false;
          Scalar s = decodeValue(summary.sub(), isScalar);
          if (isScalar) e.scalars.push_back(std::move(s));
        } else {
          summary.skip(static_cast<int>(k & 7));
        }
      }
    } else {
      d.skip(wt);
    }
  }
  return e;
}

// One record's place in the file, with its event.
struct Record {
  std::uint64_t begin = 0, end = 0;
  Event event;
};

struct Scan {
  std::string bytes;  // the whole file
  std::vector<Record> records;
  std::uint64_t validBytes = 0;
  std::string damage;
};

Scan scan(const fs::path& path) {
  core::requireFile(path, "event file");
  std::ifstream in(path, std::ios::binary);
  MS_REQUIRE(in, core::IoError, "{}: cannot read", path.string());
  Scan s;
  s.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  MS_REQUIRE(!in.bad(), core::IoError, "{}: read error", path.string());
  const std::string& all = s.bytes;
  std::uint64_t at = 0;
  const std::uint64_t size = all.size();
  while (at < size) {
    if (size - at < 12) {
      s.damage = "a truncated record header";
      break;
    }
    std::uint64_t n;
    std::uint32_t headerCrc;
    std::memcpy(&n, all.data() + at, 8);
    std::memcpy(&headerCrc, all.data() + at + 8, 4);
    if (headerCrc != maskedCrc(all.data() + at, 8)) {
      s.damage = "a record length whose CRC does not match";
      break;
    }
    // The length is checked against what the file holds before anything is read.
    if (n > size - at - 12 || size - at - 12 - n < 4) {
      s.damage = fmt::format("a record of {} bytes that the file does not hold", n);
      break;
    }
    const char* data = all.data() + at + 12;
    std::uint32_t dataCrc;
    std::memcpy(&dataCrc, data + n, 4);
    if (dataCrc != maskedCrc(data, static_cast<std::size_t>(n))) {
      s.damage = "a record whose data CRC does not match";
      break;
    }
    Record r;
    r.begin = at;
    r.end = at + 16 + n;
    try {
      r.event = decodeEvent(Decoder(data, static_cast<std::size_t>(n)));
    } catch (const core::IoError& e) {
      s.damage = fmt::format("a malformed Event message ({})", e.what());
      break;
    }
    s.records.push_back(std::move(r));
    at += 16 + n;
  }
  s.validBytes = at;
  return s;
}

std::string hostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == 0) return "localhost";
  std::string h(buf);
  // A file name: no separators.
  std::replace(h.begin(), h.end(), '/', '_');
  return h;
}

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Keeps the records of `path` up to step `resumedAt` (and its version record); drops the rest
// and a damaged tail, rewriting the file atomically when anything goes.
void truncateAfter(const fs::path& path, std::int64_t resumedAt) {
  const Scan s = scan(path);
  std::string kept;
  bool anyScalars = false, dropped = !s.damage.empty();
  for (const Record& r : s.records) {
    const bool keep = !r.event.fileVersion.empty() || r.event.step <= resumedAt;
    if (!keep) {
      dropped = true;
      continue;
    }
    anyScalars = anyScalars || !r.event.scalars.empty();
    kept.append(s.bytes, r.begin, r.end - r.begin);
  }
  if (!dropped) return;
  if (!anyScalars) {
    fs::remove(path);
    return;
  }
  AtomicOutput out(path.string());
  {
    std::ofstream f(out.tempPath(), std::ios::binary | std::ios::trunc);
    f.write(kept.data(), static_cast<std::streamsize>(kept.size()));
    f.flush();
    MS_REQUIRE(f.good(), core::IoError, "cannot write '{}'", out.tempPath());
  }
  out.commit();
}

}  // namespace

std::uint32_t crc32c(const void* data, std::size_t size) {
  static const std::array<std::uint32_t, 256> table = makeCrcTable();
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t c = 0xffffffffu;
  for (std::size_t i = 0; i < size; ++i) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

EventFileContents readEventFile(const fs::path& path, bool stopAtDamage) {
  Scan s = scan(path);
  MS_REQUIRE(stopAtDamage || s.damage.empty(), core::IoError, "{}: at byte {}: {}", path.string(),
             s.validBytes, s.damage);
  EventFileContents out;
  out.validBytes = s.validBytes;
  out.damage = s.damage;
  out.events.reserve(s.records.size());
  for (Record& r : s.records) out.events.push_back(std::move(r.event));
  return out;
}

std::vector<fs::path> eventFilesIn(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kPrefix, 0) == 0 && name.find(".tmp.") == std::string::npos &&
        entry.is_regular_file(ec)) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

EventWriter::EventWriter(const fs::path& dir, std::int64_t resumedAt) {
  for (const fs::path& f : eventFilesIn(dir)) truncateAfter(f, resumedAt);
  const double now = nowSeconds();
  const std::string base =
      fmt::format("{}{}.{}", kPrefix, static_cast<std::int64_t>(now), hostName());
  path_ = dir / base;
  if (fs::exists(path_)) path_ = dir / fmt::format("{}.{}", base, getpid());
  file_ = std::fopen(path_.c_str(), "wb");
  MS_REQUIRE(file_ != nullptr, core::IoError, "cannot create '{}': {}", path_.string(),
             std::strerror(errno));
  append(encodeEvent(now, 0, kFileVersion, {}));
}

EventWriter::~EventWriter() {
  if (file_) std::fclose(file_);
}

void EventWriter::write(std::int64_t step, const std::vector<Scalar>& scalars) {
  append(encodeEvent(nowSeconds(), step, "", scalars));
}

void EventWriter::append(const std::string& event) {
  const std::string record = frame(event);
  const bool ok = std::fwrite(record.data(), 1, record.size(), file_) == record.size() &&
                  std::fflush(file_) == 0;
  MS_REQUIRE(ok, core::IoError, "cannot append to '{}': {}", path_.string(), std::strerror(errno));
}

}  // namespace metasemi::io
