// Damaged input of every reader is refused with one line naming the file, before it can become
// data, and with memory bounded by what the file holds rather than what its header claims:
// truncated MAT-files, JPEGs with corrupt data or too many pixels, IDX headers that claim more
// than there is, shards of the wrong element type, damaged archives, class names that are not
// UTF-8, and paths that are folders or cannot be read.
#include <hdf5.h>
#include <matio.h>
#include <sys/resource.h>
#include <turbojpeg.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "metasemi/core/Error.h"
#include "metasemi/core/Files.h"
#include "metasemi/core/Utf8.h"
#include "metasemi/data/Augment.h"
#include "metasemi/io/H5File.h"
#include "metasemi/io/ShardSet.h"
#include "metasemi/io/ShardWriter.h"
#include "metasemi/io/TensorIo.h"
#include "prep/Jpeg.h"
#include "prep/MatCheck.h"
#include "prep/RawReaders.h"
#include "support/TestSupport.h"

namespace prep = metasemi::prep;
namespace io = metasemi::io;
namespace core = metasemi::core;
namespace fs = std::filesystem;
using metasemi::core::IoError;
using metasemi::test::errorOf;
using metasemi::test::readBytes;

namespace {

void writeBytes(const fs::path& p, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// A SVHN-style MAT-file of `n` images, X and y each compressed or not.
void writeSvhn(const fs::path& p, std::size_t n, bool compressX, bool compressY) {
  std::vector<std::uint8_t> x(3072 * n);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<std::uint8_t>(i * 7 + i / 3000);
  std::vector<double> y(n);
  for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<double>(1 + i % 10);
  mat_t* m = Mat_CreateVer(p.c_str(), nullptr, MAT_FT_MAT5);
  BOOST_REQUIRE(m != nullptr);
  std::size_t dx[4] = {32, 32, 3, n};
  matvar_t* vx = Mat_VarCreate("X", MAT_C_UINT8, MAT_T_UINT8, 4, dx, x.data(), 0);
  Mat_VarWrite(m, vx, compressX ? MAT_COMPRESSION_ZLIB : MAT_COMPRESSION_NONE);
  Mat_VarFree(vx);
  std::size_t dy[2] = {n, 1};
  matvar_t* vy = Mat_VarCreate("y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dy, y.data(), 0);
  Mat_VarWrite(m, vy, compressY ? MAT_COMPRESSION_ZLIB : MAT_COMPRESSION_NONE);
  Mat_VarFree(vy);
  Mat_Close(m);
}

std::vector<std::uint8_t> encodeJpeg(int w, int h, int quality = 90) {
  std::vector<std::uint8_t> rgb(static_cast<std::size_t>(w) * h * 3);
  for (std::size_t i = 0; i < rgb.size(); ++i) {
    rgb[i] = static_cast<std::uint8_t>((i * 2654435761u) >> 24);  // noise: long entropy data
  }
  tjhandle c = tjInitCompress();
  unsigned char* out = nullptr;
  unsigned long size = 0;
  BOOST_REQUIRE(
      tjCompress2(c, rgb.data(), w, 0, h, TJPF_RGB, &out, &size, TJSAMP_420, quality, 0) == 0);
  std::vector<std::uint8_t> bytes(out, out + size);
  tjFree(out);
  tjDestroy(c);
  return bytes;
}

// Offset of the first byte after the SOS segment (where entropy-coded data starts).
std::size_t scanDataStart(const std::vector<std::uint8_t>& jpeg) {
  for (std::size_t i = 2; i + 3 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xDA) {
      return i + 2 + (static_cast<std::size_t>(jpeg[i + 2]) << 8 | jpeg[i + 3]);
    }
  }
  BOOST_FAIL("no SOS marker");
  return 0;
}

// Rewrites the frame size in the SOF0 segment.
void setFrameSize(std::vector<std::uint8_t>& jpeg, int w, int h) {
  for (std::size_t i = 2; i + 8 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC0) {
      jpeg[i + 5] = static_cast<std::uint8_t>(h >> 8);
      jpeg[i + 6] = static_cast<std::uint8_t>(h);
      jpeg[i + 7] = static_cast<std::uint8_t>(w >> 8);
      jpeg[i + 8] = static_cast<std::uint8_t>(w);
      return;
    }
  }
  BOOST_FAIL("no SOF0 marker");
}

// Limits this process's address space for the scope, so that believing a header would fail
// with bad_alloc rather than quietly allocate gigabytes.
// (Not under AddressSanitizer, whose shadow memory needs terabytes of address space.)
class AddressSpaceLimit {
 public:
  explicit AddressSpaceLimit(rlim_t bytes) {
#if defined(__SANITIZE_ADDRESS__)
    active_ = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    active_ = false;
#endif
#endif
    if (!active_) return;
    getrlimit(RLIMIT_AS, &saved_);
    rlimit r = saved_;
    r.rlim_cur = bytes;
    setrlimit(RLIMIT_AS, &r);
  }
  ~AddressSpaceLimit() {
    if (active_) setrlimit(RLIMIT_AS, &saved_);
  }

 private:
  bool active_ = true;
  rlimit saved_{};
};

// Current virtual size of this process, from /proc.
rlim_t virtualBytes() {
  std::ifstream in("/proc/self/statm");
  unsigned long pages = 0;
  in >> pages;
  return static_cast<rlim_t>(pages) * static_cast<rlim_t>(sysconf(_SC_PAGESIZE));
}

// The header of a split "train" of fixed grey side x side images in the classes `names`.
io::ShardSetInfo greyHeader(const std::string& source, const std::vector<std::string>& names,
                            std::int64_t side) {
  io::ShardSetInfo h;
  h.dataset = "toy";
  h.split = "train";
  h.source = source;
  h.storage = io::ImageStorage::kFixed;
  h.numClasses = static_cast<std::int64_t>(names.size());
  h.classNames = names;
  h.height = h.width = side;
  h.channels = h.decodedChannels = 1;
  return h;
}

std::vector<std::uint8_t> idxHeader(std::uint32_t magic, const std::vector<std::uint32_t>& dims) {
  std::vector<std::uint8_t> out;
  auto put = [&](std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
  };
  put(magic);
  for (auto d : dims) put(d);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(truncated_mat_files_are_refused_naming_the_variable) {
  const auto dir = metasemi::test::freshDir("bad_mat");
  for (const bool compressed : {false, true}) {
    BOOST_TEST_CONTEXT("compressed " << compressed) {
      const fs::path good = dir / (compressed ? "z.mat" : "raw.mat");
      writeSvhn(good, 40, compressed, compressed);
      BOOST_TEST(prep::readSvhn(good).size() == 40);
      const auto bytes = readBytes(good);
      // The last variable, y, is small: cutting 5 bytes lands inside it; cutting half lands in X.
      for (const auto& [cut, variable] : std::vector<std::pair<std::size_t, std::string>>{
               {bytes.size() - 5, "y"}, {bytes.size() / 2, "X"}, {200, "X"}}) {
        const fs::path p = dir / "cut.mat";
        writeBytes(p, {bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut)});
        const std::string msg = errorOf([&] { prep::readSvhn(p); });
        // 72 bytes into a compressed X, the deflate tables are all there is: no name yet.
        const std::string named = compressed && cut == 200 ? "1 " : "'" + variable + "'";
        BOOST_TEST(msg.rfind(p.string() + ": truncated inside variable " + named, 0) == 0u, msg);
      }
    }
  }
  // A compressed variable whose deflate stream is damaged (not cut short).
  const auto bytes = readBytes(dir / "z.mat");
  auto damaged = bytes;
  for (std::size_t i = 200; i < 260; ++i) damaged[i] ^= 0x5A;
  writeBytes(dir / "damaged.mat", damaged);
  const std::string msg = errorOf([&] { prep::readSvhn(dir / "damaged.mat"); });
  BOOST_TEST(msg.rfind((dir / "damaged.mat").string() + ": ", 0) == 0u, msg);
  // Stray bytes after the last variable are not a variable either.
  auto stray = readBytes(dir / "raw.mat");
  stray.insert(stray.end(), {1, 2, 3});
  writeBytes(dir / "stray.mat", stray);
  BOOST_TEST(contains(errorOf([&] { prep::readSvhn(dir / "stray.mat"); }), "truncated: 3 stray"));
}

BOOST_AUTO_TEST_CASE(mat_variables_must_hold_what_their_dimensions_need) {
  const auto dir = metasemi::test::freshDir("bad_mat_dims");
  writeSvhn(dir / "a.mat", 8, false, false);
  auto bytes = readBytes(dir / "a.mat");
  // X's dimensions sub-element starts after the 8-byte element tag and 16 bytes of flags; its
  // 4th dimension (N) is at 128 + 8 + 16 + 8 + 12. Claim 4 billion images in 24 KiB.
  const std::size_t n = 128 + 8 + 16 + 8 + 12;
  BOOST_REQUIRE(bytes[n] == 8);
  bytes[n] = 0xFF;
  bytes[n + 1] = 0xFF;
  bytes[n + 2] = 0xFF;
  bytes[n + 3] = 0x7F;
  writeBytes(dir / "claims.mat", bytes);
  const std::string msg = errorOf([&] { prep::readSvhn(dir / "claims.mat"); });
  BOOST_TEST(msg.rfind((dir / "claims.mat").string() + ": ", 0) == 0u, msg);
  BOOST_TEST((contains(msg, "bound") || contains(msg, "dimensions need")), msg);

  // A MATLAB 4 header (20 bytes) claiming 100000 x 100000 doubles: matio's v4 reader would
  // allocate 80 GB; only Level 5 and v7.3 files are read.
  std::vector<std::uint8_t> v4(283, 'M');
  const std::uint32_t v4Header[5] = {0, 100000, 100000, 0, 2};
  std::memcpy(v4.data(), v4Header, sizeof v4Header);
  v4[20] = 'X';
  v4[21] = 0;
  writeBytes(dir / "v4.mat", v4);
  AddressSpaceLimit limit(virtualBytes() + (rlim_t{512} << 20));
  BOOST_TEST(errorOf([&] { prep::readSvhn(dir / "v4.mat"); }) ==
             (dir / "v4.mat").string() +
                 ": not a MATLAB 5 or 7.3 MAT-file (no endian mark at byte 126 of a 128-byte "
                 "header)");
}

BOOST_AUTO_TEST_CASE(every_corrupt_data_warning_of_a_jpeg_is_an_error) {
  const auto good = encodeJpeg(96, 64);
  std::vector<std::uint8_t> rgb;
  int w = 0, h = 0;
  prep::decodeJpeg(good.data(), good.size(), "good.jpg", rgb, w, h);
  BOOST_TEST(w == 96);
  const std::size_t start = scanDataStart(good);

  // Entropy data cut in the middle, the end marker kept: libjpeg only warns ("premature end of
  // data segment") and pads with grey.
  std::vector<std::uint8_t> cut(
      good.begin(), good.begin() + static_cast<std::ptrdiff_t>((start + good.size()) / 2));
  cut.push_back(0xFF);
  cut.push_back(0xD9);
  const std::string a =
      errorOf([&] { prep::decodeJpeg(cut.data(), cut.size(), "cut.jpg", rgb, w, h); });
  BOOST_TEST(a.rfind("cut.jpg: corrupt or truncated JPEG: ", 0) == 0u, a);
  BOOST_TEST(contains(a, "premature end of data segment"), a);

  // Cut with no end marker.
  const std::vector<std::uint8_t> noEnd(good.begin(), good.end() - 40);
  BOOST_TEST(
      contains(errorOf([&] { prep::decodeJpeg(noEnd.data(), noEnd.size(), "e.jpg", rgb, w, h); }),
               "Premature end of JPEG file"));

  // Garbage bytes before the end marker ("extraneous bytes before marker").
  std::vector<std::uint8_t> extra(good.begin(), good.end() - 2);
  extra.insert(extra.end(), {0x12, 0x34, 0x56, 0xFF, 0xD9});
  BOOST_TEST(
      contains(errorOf([&] { prep::decodeJpeg(extra.data(), extra.size(), "x.jpg", rgb, w, h); }),
               "x.jpg: corrupt or truncated JPEG: Corrupt JPEG data"));

  // Flipped bits inside the entropy data (bad Huffman code or a resync warning).
  auto flipped = good;
  for (std::size_t i = start + 20; i < start + 60; ++i) {
    flipped[i] = flipped[i] == 0xFF ? 0xFF : static_cast<std::uint8_t>(flipped[i] ^ 0xA5);
    if (flipped[i] == 0xFF) flipped[i] = 0xFE;
  }
  BOOST_TEST(contains(
      errorOf([&] { prep::decodeJpeg(flipped.data(), flipped.size(), "f.jpg", rgb, w, h); }),
      "f.jpg: corrupt or truncated JPEG: "));
}

BOOST_AUTO_TEST_CASE(pixel_limit_is_checked_from_the_header_before_decoding) {
  std::vector<std::uint8_t> rgb;
  int w = 0, h = 0;
  for (const int side : {20000, 65000}) {
    auto jpeg = encodeJpeg(16, 16);
    setFrameSize(jpeg, side, side);
    BOOST_TEST_CONTEXT(side) {
      // Were the header believed, the decode would need 1.2 GB (20000²·3) or more.
      AddressSpaceLimit limit(virtualBytes() + (rlim_t{512} << 20));
      const std::string msg =
          errorOf([&] { prep::decodeJpeg(jpeg.data(), jpeg.size(), "big.jpg", rgb, w, h); });
      BOOST_TEST(msg.rfind(fmt::format("big.jpg: {0}x{0} pixels", side), 0) == 0u, msg);
      BOOST_TEST(contains(msg, "over the limit of 64 Mpixel"), msg);
    }
  }
  // The limit is a setting: a 400x300 image passes at 0.12 Mpixel and fails at 0.1.
  const auto photo = encodeJpeg(400, 300);
  prep::JpegCodec codec;
  codec.setMaxPixels(prep::maxPixelsOf(0.12));
  codec.decode(photo.data(), photo.size(), "p.jpg", rgb, w, h);
  BOOST_TEST(w * h == 120000);
  codec.setMaxPixels(prep::maxPixelsOf(0.1));
  BOOST_TEST(
      contains(errorOf([&] { codec.decode(photo.data(), photo.size(), "p.jpg", rgb, w, h); }),
               "p.jpg: 400x300 pixels (0.12 Mpixel) is over the limit of 0.1 Mpixel"));
  BOOST_TEST(
      contains(errorOf<core::ConfigError>([] { prep::maxPixelsOf(0); }), "--max-megapixels"));
  BOOST_TEST(contains(errorOf<core::ConfigError>([] { prep::maxPixelsOf(std::nan("")); }),
                      "--max-megapixels"));
}

BOOST_AUTO_TEST_CASE(the_training_decoder_refuses_what_prep_refuses_in_the_rows_it_reads) {
  // Training decodes only the rows a crop covers (data/JpegDecoder.h): a header's size is
  // checked before anything is allocated, and every warning about the data it reads is an error.
  namespace md = metasemi::data;
  const auto norm = md::datasetNormalization("imagenet", {}, {}, 3);
  md::AugmentConfig whole = md::evalAugment(true, norm, 64, 64);  // reads every row
  whole.scaledDecode = false;
  std::vector<float> out(3 * 64 * 64);
  auto run = [&](const std::vector<std::uint8_t>& bytes, const md::AugmentConfig& cfg) {
    core::Rng rng(1);
    md::augmentEncoded(bytes.data(), bytes.size(), 3, "shard-00002.h5: image 9", cfg, rng,
                       out.data());
  };
  for (const int side : {20000, 65000}) {
    auto jpeg = encodeJpeg(16, 16);
    setFrameSize(jpeg, side, side);
    AddressSpaceLimit limit(virtualBytes() + (rlim_t{512} << 20));
    const std::string msg = errorOf([&] { run(jpeg, whole); });
    BOOST_TEST(msg == fmt::format("shard-00002.h5: image 9: {0}x{0} pixels ({1:.2f} Mpixel) is "
                                  "over the limit of 64 Mpixel",
                                  side, side * double(side) / 1e6));
  }
  const auto good = encodeJpeg(96, 64);
  run(good, whole);
  const std::size_t start = scanDataStart(good);
  std::vector<std::uint8_t> cut(
      good.begin(), good.begin() + static_cast<std::ptrdiff_t>((start + good.size()) / 2));
  cut.push_back(0xFF);
  cut.push_back(0xD9);
  BOOST_TEST(contains(errorOf([&] { run(cut, whole); }),
                      "shard-00002.h5: image 9: corrupt or truncated JPEG: Corrupt JPEG data: "
                      "premature end of data segment"));
  const std::vector<std::uint8_t> noEnd(good.begin(), good.end() - 40);
  BOOST_TEST(contains(errorOf([&] { run(noEnd, whole); }), "Premature end of JPEG file"));
  auto flipped = good;
  for (std::size_t i = start + 20; i < start + 60; ++i) {
    flipped[i] = flipped[i] == 0xFF ? 0xFF : static_cast<std::uint8_t>(flipped[i] ^ 0xA5);
    if (flipped[i] == 0xFF) flipped[i] = 0xFE;
  }
  BOOST_TEST(contains(errorOf([&] { run(flipped, whole); }),
                      "shard-00002.h5: image 9: corrupt or truncated JPEG: "));
  // A header alone, and bytes that are no image at all.
  const std::vector<std::uint8_t> header(good.begin(),
                                         good.begin() + static_cast<std::ptrdiff_t>(start));
  BOOST_TEST(contains(errorOf([&] { run(header, whole); }), "shard-00002.h5: image 9: "));
  const std::vector<std::uint8_t> junk(300, 0x42);
  BOOST_TEST(errorOf([&] {
               run(junk, whole);
             }).rfind("shard-00002.h5: image 9: cannot decode the image", 0) == 0u);
  // The decoder stays usable after each failure.
  run(good, whole);
}

BOOST_AUTO_TEST_CASE(idx_headers_are_checked_against_the_data_before_allocating) {
  const auto dir = metasemi::test::freshDir("bad_idx");
  std::vector<std::int64_t> dims;
  // 16 bytes claiming 65535^3 pixels; 16+ bytes claiming 10^9 bytes, raw and gzip.
  writeBytes(dir / "cube", idxHeader(0x803, {65535, 65535, 65535}));
  auto billion = idxHeader(0x803, {1000, 1000, 1000});
  billion.resize(billion.size() + 100, 7);
  writeBytes(dir / "billion", billion);
  {
    gzFile f = gzopen((dir / "billion.gz").c_str(), "wb");
    gzwrite(f, billion.data(), static_cast<unsigned>(billion.size()));
    gzclose(f);
  }
  auto maxDims = idxHeader(0x803, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu});
  writeBytes(dir / "overflow", maxDims);
  // Believing any of these headers would allocate 1 GB or more: fail unless memory follows the
  // data.
  AddressSpaceLimit limit(virtualBytes() + (rlim_t{256} << 20));
  BOOST_TEST(errorOf([&] { prep::readIdx(dir / "cube", 3, dims); }) ==
             (dir / "cube").string() +
                 ": truncated: the header announces 281462092005375 bytes of data "
                 "(65535x65535x65535), found 0");
  BOOST_TEST(errorOf([&] { prep::readIdx(dir / "billion", 3, dims); }) ==
             (dir / "billion").string() +
                 ": truncated: the header announces 1000000000 bytes of data (1000x1000x1000), "
                 "found 100");
  BOOST_TEST(errorOf([&] { prep::readIdx(dir / "billion.gz", 3, dims); }) ==
             (dir / "billion.gz").string() +
                 ": truncated: the header announces 1000000000 bytes of data (1000x1000x1000), "
                 "found 100");
  BOOST_TEST(
      contains(errorOf([&] { prep::readIdx(dir / "overflow", 3, dims); }), "more than any file"));
}

BOOST_AUTO_TEST_CASE(datasets_of_another_element_type_are_refused) {
  const auto dir = metasemi::test::freshDir("bad_dtype");
  const io::ShardSetInfo h = greyHeader("test", {"a", "b"}, 2);
  std::vector<std::uint8_t> images(4 * 4, 200);
  std::vector<std::int64_t> labels{0, 1, 0, 1};
  {
    io::ShardWriter w(dir, h, 4);
    w.addImages(images.data(), labels.data(), 4);
    w.finish();
  }
  BOOST_TEST(io::ShardSet::open(dir, "train").size() == 4);
  // The same shard with float32 images of the right shape: HDF5 would convert them silently.
  const std::string shard = io::shardPath(dir, "train", 0).string();
  const std::string copy = (dir / "copy.h5").string();
  fs::copy_file(shard, copy);
  {
    io::H5File in(copy, io::H5File::Mode::kRead);
    io::H5File out(shard, io::H5File::Mode::kCreate);
    for (const char* key : {"kind", "split", "dataset"})
      out.setAttr("/", key, in.attrString("/", key));
    for (const char* key : {"first_index", "num_images", "data_crc32", "labels_crc32"}) {
      if (in.hasAttr("/", key)) out.setAttr("/", key, in.attrInt("/", key));
    }
    out.writeVector("labels", in.readVector<std::int64_t>("labels"));
    const std::vector<float> asFloat(16, 200.0f);
    out.write("images", io::DType::kFloat32, asFloat.data(), {4, 2, 2, 1});
  }
  const std::string msg = errorOf([&] { io::ShardSet::open(dir, "train"); });
  BOOST_TEST(msg == shard + ": dataset 'images' holds float32 values, expected uint8", msg);

  // Any read that would change values is refused; widening reads are fine.
  io::H5File f(shard, io::H5File::Mode::kRead);
  std::vector<std::uint8_t> bytes(16);
  BOOST_TEST(contains(errorOf([&] { f.read("images", io::DType::kUInt8, bytes.data(), 16); }),
                      "dataset 'images' holds float32 values, expected uint8"));
  BOOST_TEST(contains(errorOf([&] { f.readRows("images", io::DType::kUInt8, 0, 1, bytes.data()); }),
                      "holds float32 values"));
  std::vector<std::int32_t> narrow(4);
  BOOST_TEST(contains(errorOf([&] { f.read("labels", io::DType::kInt32, narrow.data(), 4); }),
                      "holds int64 values, expected int32"));
  std::vector<double> wide(16);
  f.read("images", io::DType::kFloat64, wide.data(), 16);
  BOOST_TEST(wide[3] == 200.0);
}

BOOST_AUTO_TEST_CASE(class_names_must_be_utf8) {
  BOOST_TEST(core::isValidUtf8("n01440764 tench, Tinca tinca"));
  BOOST_TEST(core::isValidUtf8("caf\xc3\xa9 \xe6\x97\xa5\xf0\x9f\x90\x9f"));
  for (const std::string bad :
       {"\xff", "caf\xe9", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe6\x97"}) {
    BOOST_TEST(!core::isValidUtf8(bad), core::printable(bad));
  }
  BOOST_TEST(core::printable("caf\xe9") == "caf\\xe9");

  const auto dir = metasemi::test::freshDir("bad_utf8");
  const io::ShardSetInfo h = greyHeader("classes.txt", {"ok", "caf\xe9"}, 1);
  std::vector<std::uint8_t> images{1, 2};
  std::vector<std::int64_t> labels{0, 1};
  const std::string msg = errorOf([&] {
    io::ShardWriter w(dir, h, 4);
    w.addImages(images.data(), labels.data(), 2);
    w.finish();
  });
  BOOST_TEST(msg ==
                 "classes.txt: class name 'caf\\xe9' is not valid UTF-8 (the format stores "
                 "UTF-8 strings)",
             msg);
  BOOST_TEST(!fs::exists(io::shardIndexPath(dir, "train")));

  // CIFAR's batches.meta.txt with a name that is not UTF-8.
  fs::create_directories(dir / "cifar");
  { std::ofstream(dir / "cifar" / "batches.meta.txt") << "airplane\ncaf\xe9\n"; }
  const prep::ArchiveFiles files(dir / "cifar");
  BOOST_TEST(contains(errorOf([&] { prep::classNamesFrom(files, "batches.meta.txt", 2, {}); }),
                      "class name 'caf\\xe9' is not valid UTF-8"));
}

BOOST_AUTO_TEST_CASE(damaged_archives_say_what_is_wrong) {
  const auto dir = metasemi::test::freshDir("bad_archive");
  // A .tar.gz made here, then cut inside its member's data.
  fs::create_directories(dir / "src");
  {
    std::ofstream out(dir / "src" / "data_batch_1.bin", std::ios::binary);
    for (int i = 0; i < 3000000; ++i) out.put(static_cast<char>((i * 2654435761u) >> 24));
  }
  BOOST_REQUIRE(metasemi::test::runCommand("tar -czf " + (dir / "a.tar.gz").string() + " -C " +
                                           (dir / "src").string() + " data_batch_1.bin")
                    .exitCode == 0);
  auto bytes = readBytes(dir / "a.tar.gz");
  bytes.resize(bytes.size() * 2 / 3);  // past libarchive's first read of 1 MiB
  writeBytes(dir / "cut.tar.gz", bytes);
  const std::string msg = errorOf([&] { prep::ArchiveFiles files(dir / "cut.tar.gz"); });
  BOOST_TEST(msg.rfind((dir / "cut.tar.gz").string() + ": damaged archive (", 0) == 0u, msg);
  BOOST_TEST(msg.back() != ' ', msg);
  BOOST_TEST(msg.substr(msg.size() - 2) != ": ", msg);
}

BOOST_AUTO_TEST_CASE(paths_that_are_folders_or_unreadable_say_so) {
  const auto dir = metasemi::test::freshDir("bad_paths");
  fs::create_directories(dir / "folder");
  fs::create_symlink(dir / "loop-a", dir / "loop-b");
  fs::create_symlink(dir / "loop-b", dir / "loop-a");
  { std::ofstream(dir / "file") << "x"; }
  BOOST_TEST(core::fileProblem(dir / "file").empty());
  BOOST_TEST(errorOf([&] { core::requireFile(dir / "folder", "--checkpoint"); }) ==
             "--checkpoint " + (dir / "folder").string() + ": is a folder, expected a file");
  BOOST_TEST(errorOf([&] { core::requireFile(dir / "none"); }) ==
             (dir / "none").string() + ": no such file");
  BOOST_TEST(
      contains(errorOf([&] { core::requireFile(dir / "loop-a"); }),
               (dir / "loop-a").string() + ": cannot access: Too many levels of symbolic links"));
  BOOST_TEST(errorOf([&] { core::requireFolder(dir / "file"); }) ==
             (dir / "file").string() + ": is a file, expected a folder");
  std::vector<std::int64_t> dims;
  BOOST_TEST(errorOf([&] { prep::readIdx(dir / "folder", 3, dims); }) ==
             (dir / "folder").string() + ": is a folder, expected a file");
  BOOST_TEST(errorOf([&] { prep::readSvhn(dir / "folder"); }) ==
             (dir / "folder").string() + ": is a folder, expected a file");
  BOOST_TEST(errorOf([&] { io::H5File((dir / "folder").string(), io::H5File::Mode::kRead); }) ==
             "'" + (dir / "folder").string() + "': is a folder, expected a file");
  BOOST_TEST(
      contains(errorOf([&] { io::H5File((dir / "loop-a").string(), io::H5File::Mode::kRead); }),
               "Too many levels of symbolic links"));

  // std::filesystem's own errors are input errors (exit 3) printed as "<path>: <reason>".
  try {
    for (const auto& e : fs::recursive_directory_iterator(dir / "loop-a")) (void)e;
    BOOST_ERROR("expected a filesystem_error");
  } catch (const fs::filesystem_error& e) {
    BOOST_TEST(core::exitCodeFor(e) == core::kExitIo);
    BOOST_TEST(
        core::describeError(e) == (dir / "loop-a").string() + ": Too many levels of symbolic links",
        core::describeError(e));
  }
}

BOOST_AUTO_TEST_CASE(hdf5_reads_follow_the_stored_bytes_not_the_declared_shape) {
  const auto dir = metasemi::test::freshDir("bad_h5_claims");
  const std::string path = (dir / "claims.h5").string();
  {
    // A chunked dataset declaring 10^10 floats (40 GB), none of them written; and a compressed
    // one whose few stored bytes cannot inflate to what it declares.
    const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hsize_t dims[2] = {100000, 100000}, chunk[2] = {100, 100};
    const hid_t space = H5Screate_simple(2, dims, nullptr);
    const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, chunk);
    const hid_t ds =
        H5Dcreate2(f, "weight", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pset_deflate(dcpl, 9);
    const hid_t dz =
        H5Dcreate2(f, "zipped", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    const std::vector<float> block(100 * 100, 0.0f);
    const hsize_t start[2] = {0, 0};
    const hid_t mem = H5Screate_simple(2, chunk, nullptr);
    H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, chunk, nullptr);
    H5Dwrite(dz, H5T_NATIVE_FLOAT, mem, space, H5P_DEFAULT, block.data());
    H5Sclose(mem);
    H5Dclose(dz);
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Fclose(f);
  }
  AddressSpaceLimit limit(virtualBytes() + (rlim_t{512} << 20));
  const io::H5File f(path, io::H5File::Mode::kRead);
  BOOST_TEST(f.info("weight").numElements() == 10000000000);
  BOOST_TEST(errorOf([&] { io::readTensor(f, "weight"); }) ==
             "'" + path +
                 "': dataset 'weight' declares 10000000000 elements (40000000000 bytes) but the "
                 "file stores 0 bytes of it");
  BOOST_TEST(contains(errorOf([&] { f.readVector<float>("zipped"); }),
                      "dataset 'zipped' declares 10000000000 elements"));
}
