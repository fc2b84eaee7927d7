#include "prep/RawReaders.h"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>
#include <matio.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include "metasemi/core/Error.h"
#include "metasemi/core/Files.h"
#include "metasemi/core/Utf8.h"
#include "prep/MatCheck.h"

namespace metasemi::prep {
namespace fs = std::filesystem;
using core::IoError;

namespace {

std::uint32_t bigEndian32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};

// Reads up to `n` bytes; returns how many were read. Raw files pass through zlib unchanged.
std::size_t gzReadAll(gzFile f, std::uint8_t* out, std::size_t n, const fs::path& path) {
  std::size_t done = 0;
  while (done < n) {
    const unsigned step = static_cast<unsigned>(std::min<std::size_t>(n - done, 1u << 30));
    const int got = gzread(f, out + done, step);
    if (got < 0) {
      int code = 0;
      const char* msg = gzerror(f, &code);
      MS_THROW(IoError, "{}: cannot decompress: {}", path.string(), msg ? msg : "zlib error");
    }
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  return done;
}

// libarchive's message for the last failure, never empty: it leaves some unset (a gzip stream
// cut short inside a member's data, for one).
std::string archiveErrorOf(archive* a, int rc) {
  const char* msg = archive_error_string(a);
  if (msg != nullptr && *msg != '\0') return msg;
  switch (rc) {
    case ARCHIVE_WARN:
      return "a member could not be read completely (truncated or damaged)";
    case ARCHIVE_RETRY:
      return "a read failed (retry)";
    default:
      return "truncated or damaged data (libarchive gave no reason)";
  }
}

}  // namespace

std::vector<std::uint8_t> readIdx(const fs::path& path, int expectedDims,
                                  std::vector<std::int64_t>& dims) {
  core::requireFile(path);
  std::unique_ptr<gzFile_s, GzCloser> f(gzopen(path.c_str(), "rb"));
  MS_REQUIRE(f != nullptr, IoError, "{}: cannot open: {}", path.string(), std::strerror(errno));
  std::uint8_t header[4];
  MS_REQUIRE(gzReadAll(f.get(), header, 4, path) == 4, IoError,
             "{}: truncated: shorter than the 4-byte IDX magic number", path.string());
  const std::uint32_t magic = bigEndian32(header);
  const std::uint32_t want = 0x0800u + static_cast<std::uint32_t>(expectedDims);
  MS_REQUIRE(magic == want, IoError,
             "{}: wrong magic number 0x{:08x}, expected 0x{:08x} (IDX unsigned byte data with "
             "{} dimension{})",
             path.string(), magic, want, expectedDims, expectedDims == 1 ? "" : "s");
  std::vector<std::uint8_t> dimBytes(static_cast<std::size_t>(4 * expectedDims));
  MS_REQUIRE(gzReadAll(f.get(), dimBytes.data(), dimBytes.size(), path) == dimBytes.size(), IoError,
             "{}: truncated in the header", path.string());
  dims.clear();
  std::int64_t total = 1;
  bool overflow = false;
  for (int d = 0; d < expectedDims; ++d) {
    dims.push_back(bigEndian32(dimBytes.data() + 4 * d));
    overflow = overflow || __builtin_mul_overflow(total, dims.back(), &total);
  }
  MS_REQUIRE(!overflow, IoError, "{}: the header announces {} bytes of data, more than any file",
             path.string(), fmt::join(dims, "x"));
  MS_REQUIRE(total > 0, IoError, "{}: empty data (dimensions {})", path.string(),
             fmt::join(dims, "x"));
  // The header's claim is checked against the data actually there before it is believed: the
  // file's size for a raw file; a gzip stream is read in bounded chunks, so memory follows the
  // data found, never the claim.
  const std::int64_t headerBytes = 4 + 4 * expectedDims;
  if (gzdirect(f.get()) == 1) {
    std::error_code ec;
    const auto fileSize = static_cast<std::int64_t>(fs::file_size(path, ec));
    MS_REQUIRE(!ec, IoError, "{}: cannot read its size: {}", path.string(), ec.message());
    MS_REQUIRE(fileSize - headerBytes >= total, IoError,
               "{}: truncated: the header announces {} bytes of data ({}), found {}", path.string(),
               total, fmt::join(dims, "x"), fileSize - headerBytes);
  }
  std::vector<std::uint8_t> data;
  std::int64_t got = 0;
  while (got < total) {
    // Grows with what was read (1 MiB first): at most twice the data found, plus 1 MiB.
    const std::int64_t want = std::min(std::max<std::int64_t>(got, 1 << 20), total - got);
    data.resize(static_cast<std::size_t>(got + want));
    const auto n = static_cast<std::int64_t>(
        gzReadAll(f.get(), data.data() + got, static_cast<std::size_t>(want), path));
    got += n;
    if (n < want) break;
  }
  MS_REQUIRE(got == total, IoError,
             "{}: truncated: the header announces {} bytes of data ({}), found {}", path.string(),
             total, fmt::join(dims, "x"), got);
  std::uint8_t extra;
  MS_REQUIRE(gzReadAll(f.get(), &extra, 1, path) == 0, IoError,
             "{}: more bytes than the header announces ({} bytes of data, {})", path.string(),
             total, fmt::join(dims, "x"));
  return data;
}

RawSplit readIdxSplit(const fs::path& images, const fs::path& labels) {
  std::vector<std::int64_t> imageDims, labelDims;
  RawSplit s;
  s.images = readIdx(images, 3, imageDims);
  const auto rawLabels = readIdx(labels, 1, labelDims);
  MS_REQUIRE(imageDims[0] == labelDims[0], IoError, "{}: {} labels, but {} holds {} images",
             labels.string(), labelDims[0], images.string(), imageDims[0]);
  s.height = imageDims[1];
  s.width = imageDims[2];
  s.channels = 1;
  s.labels.assign(rawLabels.begin(), rawLabels.end());
  s.source = images.string() + ", " + labels.string();
  return s;
}

ArchiveFiles::ArchiveFiles(fs::path input) : input_(std::move(input)) {
  MS_REQUIRE(fs::exists(input_), IoError, "{}: no such file or folder", input_.string());
  if (fs::is_directory(input_)) {
    for (const auto& e : fs::recursive_directory_iterator(input_)) {
      if (e.is_regular_file()) members_.emplace_back(e.path().filename(), e.path().string());
    }
    return;
  }
  isArchive_ = true;
  // Only the member list is kept here; read() extracts on demand.
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  if (archive_read_open_filename(a, input_.c_str(), 1 << 20) != ARCHIVE_OK) {
    const std::string msg = archive_error_string(a) ? archive_error_string(a) : "unknown error";
    archive_read_free(a);
    MS_THROW(IoError, "{}: not a readable archive or folder: {}", input_.string(), msg);
  }
  archive_entry* entry = nullptr;
  int rc = ARCHIVE_OK;
  std::string where = "before its first member";
  while ((rc = archive_read_next_header(a, &entry)) == ARCHIVE_OK) {
    const char* name = archive_entry_pathname(entry);
    const std::string path = name ? name : "";
    where = "in member " + core::printable(path);
    if (archive_entry_filetype(entry) == AE_IFREG) {
      members_.emplace_back(fs::path(path).filename(), path);
    }
    // Skipping reads the member through: a stream cut short inside it fails here.
    if ((rc = archive_read_data_skip(a)) != ARCHIVE_OK) break;
    where = "after member " + core::printable(path);
  }
  const std::string msg = archiveErrorOf(a, rc);
  archive_read_free(a);
  MS_REQUIRE(rc == ARCHIVE_EOF, IoError, "{}: damaged archive ({}): {}", input_.string(), where,
             msg);
}

bool ArchiveFiles::has(const std::string& name) const {
  return std::any_of(members_.begin(), members_.end(),
                     [&](const auto& m) { return m.first == name; });
}

std::string ArchiveFiles::describe(const std::string& name) const {
  for (const auto& m : members_) {
    if (m.first == name) return isArchive_ ? input_.string() + ":" + m.second : m.second;
  }
  return (input_ / name).string();
}

std::vector<std::uint8_t> ArchiveFiles::read(const std::string& name) const {
  auto it = std::find_if(members_.begin(), members_.end(),
                         [&](const auto& m) { return m.first == name; });
  MS_REQUIRE(it != members_.end(), IoError, "{}: file {} not found in it", input_.string(), name);
  if (!isArchive_) {
    std::ifstream in(it->second, std::ios::binary | std::ios::ate);
    MS_REQUIRE(in, IoError, "{}: cannot open", it->second);
    std::vector<std::uint8_t> data(static_cast<std::size_t>(in.tellg()));
    in.seekg(0);
    in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(data.size()));
    MS_REQUIRE(in, IoError, "{}: read failed", it->second);
    return data;
  }
  if (extracted_.empty()) {
    archive* a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    std::string error;
    if (archive_read_open_filename(a, input_.c_str(), 1 << 20) != ARCHIVE_OK) {
      error = archiveErrorOf(a, ARCHIVE_FATAL);
    } else {
      archive_entry* entry = nullptr;
      int rc = ARCHIVE_OK;
      while (error.empty() && (rc = archive_read_next_header(a, &entry)) == ARCHIVE_OK) {
        if (archive_entry_filetype(entry) != AE_IFREG) continue;
        auto& data = extracted_[archive_entry_pathname(entry)];
        std::uint8_t buf[1 << 16];
        la_ssize_t got = 0;
        while ((got = archive_read_data(a, buf, sizeof buf)) > 0) {
          data.insert(data.end(), buf, buf + got);
        }
        if (got < 0) error = archiveErrorOf(a, static_cast<int>(got));
      }
      if (error.empty() && rc != ARCHIVE_EOF) error = archiveErrorOf(a, rc);
    }
    archive_read_free(a);
    if (!error.empty()) {
      extracted_.clear();
      MS_THROW(IoError, "{}: cannot extract: {}", input_.string(), error);
    }
  }
  const auto found = extracted_.find(it->second);
  MS_REQUIRE(found != extracted_.end(), IoError, "{}: cannot extract {}", input_.string(),
             it->second);
  std::vector<std::uint8_t> data = found->second;
  return data;
}

namespace {

constexpr std::int64_t kCifarPixels = 3 * 32 * 32;

// Appends the records of one CIFAR file: `labelBytes` label bytes, then RGB planes.
void appendCifarRecords(const std::vector<std::uint8_t>& data, const std::string& what,
                        int labelBytes, int labelByte, std::int64_t numClasses,
                        std::int64_t expectedRecords, RawSplit& out) {
  const std::int64_t record = labelBytes + kCifarPixels;
  const auto size = static_cast<std::int64_t>(data.size());
  MS_REQUIRE(size % record == 0 && (expectedRecords == 0 || size == expectedRecords * record),
             IoError, "{}: {} bytes, expected {} records of {} bytes ({} bytes)", what, size,
             expectedRecords, record, expectedRecords * record);
  const std::int64_t n = size / record;
  const std::size_t base = out.images.size();
  out.images.resize(base + static_cast<std::size_t>(n * kCifarPixels));
  for (std::int64_t i = 0; i < n; ++i) {
    const std::uint8_t* r = data.data() + i * record;
    const std::int64_t y = r[labelByte];
    MS_REQUIRE(y < numClasses, IoError, "{}: record {} has label {}, expected 0..{}", what, i, y,
               numClasses - 1);
    out.labels.push_back(y);
    const std::uint8_t* planes = r + labelBytes;
    std::uint8_t* dst = out.images.data() + base + i * kCifarPixels;
    for (int p = 0; p < 1024; ++p) {
      dst[3 * p + 0] = planes[p];
      dst[3 * p + 1] = planes[1024 + p];
      dst[3 * p + 2] = planes[2048 + p];
    }
  }
}

}  // namespace

RawSplit readCifar10(const ArchiveFiles& files, bool train) {
  RawSplit s;
  s.height = s.width = 32;
  s.channels = 3;
  std::vector<std::string> names;
  if (train) {
    for (int b = 1; b <= 5; ++b) names.push_back(fmt::format("data_batch_{}.bin", b));
  } else {
    names.push_back("test_batch.bin");
  }
  s.images.reserve(static_cast<std::size_t>(names.size() * 10000 * kCifarPixels));
  for (const auto& name : names) {
    const auto data = files.read(name);
    appendCifarRecords(data, files.describe(name), 1, 0, 10, 10000, s);
    s.source += (s.source.empty() ? "" : ", ") + files.describe(name);
  }
  return s;
}

RawSplit readCifar100(const ArchiveFiles& files, bool train, bool fine) {
  RawSplit s;
  s.height = s.width = 32;
  s.channels = 3;
  const std::string name = train ? "train.bin" : "test.bin";
  const auto data = files.read(name);
  appendCifarRecords(data, files.describe(name), 2, fine ? 1 : 0, fine ? 100 : 20,
                     train ? 50000 : 10000, s);
  s.source = files.describe(name);
  return s;
}

std::vector<std::string> classNamesFrom(const ArchiveFiles& files, const std::string& name,
                                        std::int64_t numClasses,
                                        const std::vector<std::string>& fallback) {
  if (!files.has(name)) return fallback;
  const auto data = files.read(name);
  std::vector<std::string> out;
  std::string line;
  for (const std::uint8_t c : data) {
    if (c == '\n') {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty()) out.push_back(line);
      line.clear();
    } else {
      line += static_cast<char>(c);
    }
  }
  if (!line.empty()) out.push_back(line);
  for (const auto& c : out) {
    MS_REQUIRE(core::isValidUtf8(c), IoError, "{}: class name '{}' is not valid UTF-8",
               files.describe(name), core::printable(c));
  }
  MS_REQUIRE(static_cast<std::int64_t>(out.size()) == numClasses, IoError,
             "{}: {} class names, expected {}", files.describe(name), out.size(), numClasses);
  return out;
}

namespace {

struct MatCloser {
  void operator()(mat_t* m) const { Mat_Close(m); }
};
struct VarCloser {
  void operator()(matvar_t* v) const { Mat_VarFree(v); }
};

std::string dimsOf(const matvar_t* v) {
  std::vector<std::size_t> d(v->dims, v->dims + v->rank);
  return fmt::format("{}", fmt::join(d, "x"));
}

}  // namespace

RawSplit readSvhn(const fs::path& matFile) {
  const std::string p = matFile.string();
  core::requireFile(matFile);
  // matio fills what a truncated file lacks with zeros or garbage: check the structure first.
  checkMatFile(matFile);
  std::unique_ptr<mat_t, MatCloser> mat(Mat_Open(p.c_str(), MAT_ACC_RDONLY));
  MS_REQUIRE(mat != nullptr, IoError, "{}: not a MATLAB file matio can read", p);
  std::unique_ptr<matvar_t, VarCloser> x(Mat_VarRead(mat.get(), "X"));
  MS_REQUIRE(x != nullptr, IoError, "{}: no readable variable X (the images)", p);
  MS_REQUIRE(x->class_type == MAT_C_UINT8 && x->rank == 4 && x->dims[0] == 32 && x->dims[1] == 32 &&
                 x->dims[2] == 3,
             IoError, "{}: X must be uint8 32x32x3xN, found class {} with dimensions {}", p,
             static_cast<int>(x->class_type), dimsOf(x.get()));
  std::unique_ptr<matvar_t, VarCloser> y(Mat_VarRead(mat.get(), "y"));
  MS_REQUIRE(y != nullptr, IoError, "{}: no readable variable y (the labels)", p);
  const auto n = static_cast<std::int64_t>(x->dims[3]);
  std::size_t ny = 1;
  for (int d = 0; d < y->rank; ++d) ny *= y->dims[d];
  MS_REQUIRE(static_cast<std::int64_t>(ny) == n, IoError, "{}: y has {} labels ({}), X {} images",
             p, ny, dimsOf(y.get()), n);
  MS_REQUIRE(x->data != nullptr && y->data != nullptr, IoError, "{}: X or y has no data", p);
  RawSplit s;
  s.height = s.width = 32;
  s.channels = 3;
  s.source = p;
  s.labels.resize(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    double v = 0;
    switch (y->class_type) {
      case MAT_C_DOUBLE:
        v = static_cast<const double*>(y->data)[i];
        break;
      case MAT_C_SINGLE:
        v = static_cast<const float*>(y->data)[i];
        break;
      case MAT_C_UINT8:
        v = static_cast<const std::uint8_t*>(y->data)[i];
        break;
      default:
        MS_THROW(IoError, "{}: y must be double, single or uint8, found class {}", p,
                 static_cast<int>(y->class_type));
    }
    MS_REQUIRE(v >= 1 && v <= 10 && v == static_cast<int>(v), IoError,
               "{}: label {} of image {} is not one of 1..10", p, v, i);
    s.labels[static_cast<std::size_t>(i)] = static_cast<std::int64_t>(v) % 10;
  }
  // MATLAB stores X column-major: h fastest, then w, c, n.
  const auto* src = static_cast<const std::uint8_t*>(x->data);
  s.images.resize(static_cast<std::size_t>(n * 3072));
  for (std::int64_t i = 0; i < n; ++i) {
    std::uint8_t* dst = s.images.data() + i * 3072;
    for (int c = 0; c < 3; ++c) {
      for (int w = 0; w < 32; ++w) {
        for (int h = 0; h < 32; ++h) {
          dst[(h * 32 + w) * 3 + c] = src[h + 32 * w + 1024 * c + 3072 * i];
        }
      }
    }
  }
  return s;
}

}  // namespace metasemi::prep
