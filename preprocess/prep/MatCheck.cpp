#include "prep/MatCheck.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "metasemi/core/Error.h"

namespace metasemi::prep {
namespace fs = std::filesystem;
using core::IoError;

namespace {

// Data types of the Level 5 format (MATLAB's "MAT-File Format", table 1-1).
enum : std::uint32_t {
  kMiInt8 = 1,
  kMiUInt8 = 2,
  kMiInt16 = 3,
  kMiUInt16 = 4,
  kMiInt32 = 5,
  kMiUInt32 = 6,
  kMiSingle = 7,
  kMiDouble = 9,
  kMiInt64 = 12,
  kMiUInt64 = 13,
  kMiMatrix = 14,
  kMiCompressed = 15,
  kMiUtf8 = 16,
  kMiUtf16 = 17,
  kMiUtf32 = 18,
};

std::uint64_t elementSize(std::uint32_t type) {
  switch (type) {
    case kMiInt8:
    case kMiUInt8:
    case kMiUtf8:
      return 1;
    case kMiInt16:
    case kMiUInt16:
    case kMiUtf16:
      return 2;
    case kMiInt32:
    case kMiUInt32:
    case kMiSingle:
    case kMiUtf32:
      return 4;
    case kMiDouble:
    case kMiInt64:
    case kMiUInt64:
      return 8;
    default:
      return 0;
  }
}

struct Reader {
  bool swap = false;
  std::uint32_t u32(const std::uint8_t* p) const {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    return swap ? __builtin_bswap32(v) : v;
  }
};

// One sub-element of an array: its type, byte count and where its data starts.
struct Sub {
  std::uint32_t type = 0;
  std::uint64_t bytes = 0;
  std::size_t data = 0;  // offset of the data in the buffer
  std::size_t next = 0;  // offset of the following sub-element
};

// Parses the sub-element at `pos` of `buf` (the first `have` bytes of an array element whose
// payload is `total` bytes). Returns false when its tag lies beyond what is buffered.
bool parseSub(const Reader& r, const std::uint8_t* buf, std::size_t have, std::size_t pos,
              std::uint64_t total, Sub& out, const std::string& what) {
  if (pos + 8 > have) return false;
  const std::uint32_t first = r.u32(buf + pos);
  if ((first >> 16) != 0) {  // small data element: type and size in the first 4 bytes
    out.type = first & 0xFFFF;
    out.bytes = first >> 16;
    MS_REQUIRE(out.bytes <= 4, IoError, "{}: damaged small data element", what);
    out.data = pos + 4;
    out.next = pos + 8;
  } else {
    out.type = first;
    out.bytes = r.u32(buf + pos + 4);
    out.data = pos + 8;
    out.next = pos + 8 + static_cast<std::size_t>((out.bytes + 7) / 8 * 8);
  }
  MS_REQUIRE(out.data + out.bytes <= total, IoError,
             "{}: a data element of {} bytes runs past the end of its variable ({} bytes)", what,
             out.bytes, total);
  return true;
}

// Checks the header of an array (miMATRIX payload, first `have` of `total` bytes in `buf`):
// flags, dimensions, name and, for numeric classes, that the real part holds every element.
// Returns the variable's name ("" when it is not buffered).
std::string checkArray(const Reader& r, const std::uint8_t* buf, std::size_t have,
                       std::uint64_t total, const std::string& file) {
  const std::string what = file;
  Sub flags, dims, name, real;
  if (!parseSub(r, buf, have, 0, total, flags, what)) return "";
  MS_REQUIRE(flags.type == kMiUInt32 && flags.bytes == 8 && flags.data + 8 <= have, IoError,
             "{}: damaged variable: no array flags", what);
  const std::uint32_t cls = r.u32(buf + flags.data) & 0xFF;
  if (!parseSub(r, buf, have, flags.next, total, dims, what)) return "";
  MS_REQUIRE(dims.type == kMiInt32 && dims.bytes % 4 == 0 && dims.bytes >= 8, IoError,
             "{}: damaged variable: no dimensions", what);
  if (dims.data + dims.bytes > have) return "";
  std::uint64_t count = 1;
  for (std::uint64_t d = 0; d < dims.bytes / 4; ++d) {
    const auto n = static_cast<std::int32_t>(r.u32(buf + dims.data + 4 * d));
    MS_REQUIRE(n >= 0, IoError, "{}: damaged variable: negative dimension {}", what, n);
    count *= static_cast<std::uint64_t>(n);
    MS_REQUIRE(count <= kMaxMatVariableBytes, IoError,
               "{}: a variable claims {} or more elements, more than this reader's bound of {} "
               "bytes",
               what, count, kMaxMatVariableBytes);
  }
  if (!parseSub(r, buf, have, dims.next, total, name, what)) return "";
  MS_REQUIRE(name.type == kMiInt8 && name.data + name.bytes <= have, IoError,
             "{}: damaged variable: no name", what);
  const std::string varName(reinterpret_cast<const char*>(buf + name.data),
                            static_cast<std::size_t>(name.bytes));
  // Numeric classes (mxDOUBLE_CLASS 6 .. mxUINT64_CLASS 15) hold their real part next.
  if (cls >= 6 && cls <= 15) {
    const std::string v = fmt::format("{}: variable '{}'", file, varName);
    if (!parseSub(r, buf, have, name.next, total, real, v)) {
      MS_REQUIRE(name.next + 8 <= total, IoError, "{}: truncated: no data", v);
      return varName;
    }
    const std::uint64_t size = elementSize(real.type);
    MS_REQUIRE(size > 0, IoError, "{}: data of unknown type {}", v, real.type);
    MS_REQUIRE(real.bytes == count * size, IoError,
               "{}: holds {} bytes of data, its dimensions need {}", v, real.bytes, count * size);
  }
  return varName;
}

// Inflates a compressed element of `bytes` bytes, of which the file holds `present`, from `in`
// a bounded buffer at a time, and checks that it is all there and inflates to its declared size.
void checkCompressed(std::ifstream& in, std::uint64_t bytes, std::uint64_t present, const Reader& r,
                     const std::string& file, int index) {
  const bool truncated = present < bytes;
  z_stream z{};
  MS_CHECK(inflateInit(&z) == Z_OK, "zlib initialisation failed");
  std::vector<std::uint8_t> src(1 << 16), dst(1 << 16);
  std::vector<std::uint8_t> head;  // the first bytes inflated: the element's tag and header
  constexpr std::size_t kHead = 4096;
  std::uint64_t left = std::min(bytes, present), produced = 0;
  int rc = Z_OK;
  std::string error;
  while (rc != Z_STREAM_END && error.empty()) {
    if (z.avail_in == 0) {
      if (left == 0) {
        error = "compressed data ends early";
        break;
      }
      const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(left, src.size()));
      in.read(reinterpret_cast<char*>(src.data()), static_cast<std::streamsize>(take));
      if (!in) {
        error = "read failed";
        break;
      }
      left -= take;
      z.next_in = src.data();
      z.avail_in = static_cast<uInt>(take);
    }
    z.next_out = dst.data();
    z.avail_out = static_cast<uInt>(dst.size());
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      error = z.msg ? z.msg : "inflate error";
      break;
    }
    const std::size_t got = dst.size() - z.avail_out;
    if (head.size() < kHead) {
      head.insert(head.end(), dst.begin(),
                  dst.begin() + static_cast<std::ptrdiff_t>(std::min(got, kHead - head.size())));
    }
    produced += got;
    if (produced > kMaxMatVariableBytes + 8) error = "inflates beyond this reader's bound";
    if (truncated && head.size() >= kHead) break;  // enough to name it
  }
  inflateEnd(&z);
  const std::string what = fmt::format("{}: compressed variable {}", file, index + 1);
  if (truncated) {
    std::string name;
    try {
      if (head.size() >= 8) name = checkArray(r, head.data() + 8, head.size() - 8, ~0u, what);
    } catch (const IoError&) {
      // Too damaged to name.
    }
    MS_THROW(
        IoError,
        "{}: truncated inside variable {}: it needs {} compressed bytes, the file ends {} "
        "bytes into it",
        file,
        name.empty() ? fmt::format("{} (too little left to name it)", index + 1) : "'" + name + "'",
        bytes, present);
  }
  MS_REQUIRE(error.empty(), IoError, "{}: damaged: {}", what, error);
  MS_REQUIRE(head.size() >= 8, IoError, "{}: damaged: inflates to {} bytes", what, head.size());
  const std::uint32_t type = r.u32(head.data());
  const std::uint64_t inner = r.u32(head.data() + 4);
  MS_REQUIRE(type == kMiMatrix, IoError, "{}: holds data of type {}, expected a matrix", what,
             type);
  const std::string name = checkArray(r, head.data() + 8, head.size() - 8, inner, what);
  MS_REQUIRE(produced >= 8 + inner, IoError,
             "{}: variable '{}' inflates to {} bytes, its header declares {}: damaged or "
             "truncated",
             file, name, produced - 8, inner);
}

}  // namespace

void checkMatFile(const fs::path& path) {
  const std::string file = path.string();
  std::error_code ec;
  const std::uint64_t size = fs::file_size(path, ec);
  MS_REQUIRE(!ec, IoError, "{}: cannot read its size: {}", file, ec.message());
  std::ifstream in(path, std::ios::binary);
  MS_REQUIRE(in, IoError, "{}: cannot open", file);
  // Only Level 5 files (SVHN's) and v7.3 files (HDF5, which checks its own reads) go to
  // matio: its MATLAB 4 reader believes the sizes in a 20-byte header.
  std::array<std::uint8_t, 128> header{};
  in.read(reinterpret_cast<char*>(header.data()), header.size());
  Reader r;
  const bool marked = in && ((header[126] == 'I' && header[127] == 'M') ||
                             (header[126] == 'M' && header[127] == 'I'));
  MS_REQUIRE(marked, IoError,
             "{}: not a MATLAB 5 or 7.3 MAT-file (no endian mark at byte 126 of a 128-byte "
             "header)",
             file);
  r.swap = header[126] == 'M';
  const std::uint16_t version = r.swap ? static_cast<std::uint16_t>(header[124] << 8 | header[125])
                                       : static_cast<std::uint16_t>(header[125] << 8 | header[124]);
  if (version == 0x0200) {
    std::array<char, 8> signature{};
    in.seekg(512);
    in.read(signature.data(), signature.size());
    MS_REQUIRE(in && std::memcmp(signature.data(), "\x89HDF\r\n\x1a\n", 8) == 0, IoError,
               "{}: a MAT-file 7.3 header without the HDF5 file it announces at byte 512", file);
    return;
  }
  MS_REQUIRE(version == 0x0100, IoError,
             "{}: MAT-file version 0x{:04x}, expected 5 (0x0100) or 7.3 (0x0200)", file, version);
  std::uint64_t offset = 128;
  std::vector<std::uint8_t> head;
  for (int index = 0; offset < size; ++index) {
    MS_REQUIRE(size - offset >= 8, IoError,
               "{}: truncated: {} stray bytes after {} where a data element should start", file,
               size - offset, index == 0 ? "the header" : fmt::format("variable {}", index));
    std::array<std::uint8_t, 8> tag{};
    in.seekg(static_cast<std::streamoff>(offset));
    in.read(reinterpret_cast<char*>(tag.data()), tag.size());
    MS_REQUIRE(in, IoError, "{}: read failed at byte {}", file, offset);
    const std::uint32_t type = r.u32(tag.data());
    const std::uint64_t bytes = r.u32(tag.data() + 4);
    const std::uint64_t end = offset + 8 + bytes;
    if (type == kMiMatrix) {
      // The header of the variable names it, even in a file cut short inside its data.
      const auto take = static_cast<std::size_t>(
          std::min<std::uint64_t>({bytes, size - offset - 8, std::uint64_t{4096}}));
      head.resize(take);
      in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(take));
      MS_REQUIRE(in, IoError, "{}: read failed at byte {}", file, offset + 8);
      const std::string name = checkArray(r, head.data(), take, bytes, file);
      MS_REQUIRE(end <= size, IoError,
                 "{}: truncated inside variable {}: it needs {} bytes, the file ends {} bytes "
                 "into it",
                 file,
                 name.empty() ? fmt::format("{} (too little left to name it)", index + 1)
                              : "'" + name + "'",
                 bytes, size - offset - 8);
    } else if (type == kMiCompressed) {
      checkCompressed(in, bytes, size - offset - 8, r, file, index);
    } else {
      MS_THROW(IoError, "{}: damaged: data element {} has type {}, expected a variable", file,
               index + 1, type);
    }
    offset = type == kMiMatrix ? offset + 8 + (bytes + 7) / 8 * 8 : end;
  }
}

}  // namespace metasemi::prep
