// Readers of the original formats on small files written here: IDX (raw and gzip), SVHN's
// MATLAB v5 files (written with matio), CIFAR binary records; and their error messages.
#include <matio.h>
#include <zlib.h>

#include <fstream>

#include "metasemi/core/Error.h"
#include "prep/RawReaders.h"
#include "support/TestSupport.h"

namespace prep = metasemi::prep;
namespace fs = std::filesystem;
using metasemi::core::IoError;
using metasemi::test::errorOf;

namespace {

std::vector<std::uint8_t> idxBytes(std::uint32_t magic, const std::vector<std::uint32_t>& dims,
                                   const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> out;
  auto put = [&](std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
  };
  put(magic);
  for (auto d : dims) put(d);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void writeFile(const fs::path& p, const std::vector<std::uint8_t>& bytes, bool gz = false) {
  if (gz) {
    gzFile f = gzopen(p.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
    return;
  }
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

BOOST_AUTO_TEST_CASE(idx_raw_and_gzip_read_the_same) {
  const auto dir = metasemi::test::freshDir("prep_idx");
  std::vector<std::uint8_t> pixels(3 * 4 * 5);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(7 * i);
  const std::vector<std::uint8_t> labels{2, 0, 1};
  writeFile(dir / "img", idxBytes(0x803, {3, 4, 5}, pixels));
  writeFile(dir / "lab", idxBytes(0x801, {3}, labels));
  writeFile(dir / "img.gz", idxBytes(0x803, {3, 4, 5}, pixels), true);
  writeFile(dir / "lab.gz", idxBytes(0x801, {3}, labels), true);
  const auto raw = prep::readIdxSplit(dir / "img", dir / "lab");
  const auto gz = prep::readIdxSplit(dir / "img.gz", dir / "lab.gz");
  for (const auto* s : {&raw, &gz}) {
    BOOST_TEST(s->height == 4);
    BOOST_TEST(s->width == 5);
    BOOST_TEST(s->channels == 1);
    BOOST_TEST(s->images == pixels);
    BOOST_TEST(s->labels == std::vector<std::int64_t>({2, 0, 1}));
  }
}

BOOST_AUTO_TEST_CASE(idx_errors_name_the_file) {
  const auto dir = metasemi::test::freshDir("prep_idx_errors");
  std::vector<std::int64_t> dims;
  const std::vector<std::uint8_t> pixels(2 * 3 * 3, 1);
  BOOST_TEST(errorOf([&] { prep::readIdx(dir / "none", 3, dims); }) ==
             (dir / "none").string() + ": no such file");
  writeFile(dir / "magic", idxBytes(0x801, {2, 3, 3}, pixels));
  BOOST_TEST(errorOf([&] { prep::readIdx(dir / "magic", 3, dims); }) ==
             (dir / "magic").string() +
                 ": wrong magic number 0x00000801, expected 0x00000803 (IDX unsigned byte data "
                 "with 3 dimensions)");
  auto truncated = idxBytes(0x803, {2, 3, 3}, pixels);
  truncated.resize(truncated.size() - 5);
  writeFile(dir / "short.gz", truncated, true);
  BOOST_TEST(errorOf([&] { prep::readIdx(dir / "short.gz", 3, dims); }) ==
             (dir / "short.gz").string() +
                 ": truncated: the header announces 18 bytes of data (2x3x3), found 13");
  auto longer = idxBytes(0x803, {2, 3, 3}, pixels);
  longer.push_back(0);
  writeFile(dir / "long", longer);
  BOOST_TEST(errorOf([&] { prep::readIdx(dir / "long", 3, dims); }).find("more bytes than") !=
             std::string::npos);
  writeFile(dir / "img", idxBytes(0x803, {2, 3, 3}, pixels));
  writeFile(dir / "lab", idxBytes(0x801, {3}, {0, 1, 2}));
  BOOST_TEST(errorOf([&] { prep::readIdxSplit(dir / "img", dir / "lab"); }) ==
             (dir / "lab").string() + ": 3 labels, but " + (dir / "img").string() +
                 " holds 2 images");
}

namespace {

// A SVHN-style file: X uint8 32x32x3xN in MATLAB's column-major order, y double N x 1.
void writeSvhnMat(const fs::path& p, const std::vector<std::uint8_t>& x, std::size_t n,
                  const std::vector<double>& y) {
  mat_t* m = Mat_CreateVer(p.c_str(), nullptr, MAT_FT_MAT5);
  BOOST_REQUIRE(m != nullptr);
  std::size_t dx[4] = {32, 32, 3, n};
  matvar_t* vx =
      Mat_VarCreate("X", MAT_C_UINT8, MAT_T_UINT8, 4, dx, const_cast<std::uint8_t*>(x.data()), 0);
  Mat_VarWrite(m, vx, MAT_COMPRESSION_ZLIB);
  Mat_VarFree(vx);
  std::size_t dy[2] = {y.size(), 1};
  matvar_t* vy =
      Mat_VarCreate("y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dy, const_cast<double*>(y.data()), 0);
  Mat_VarWrite(m, vy, MAT_COMPRESSION_NONE);
  Mat_VarFree(vy);
  Mat_Close(m);
}

}  // namespace

BOOST_AUTO_TEST_CASE(svhn_mat_file_is_transposed_to_hwc_and_10_means_0) {
  const auto dir = metasemi::test::freshDir("prep_svhn");
  const std::size_t n = 3;
  std::vector<std::uint8_t> x(32 * 32 * 3 * n);
  // X(h, w, c, i) = h + 2w + 50c + 7i (mod 256), stored with h fastest.
  for (std::size_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c)
      for (int w = 0; w < 32; ++w)
        for (int h = 0; h < 32; ++h)
          x[h + 32 * w + 1024 * c + 3072 * i] =
              static_cast<std::uint8_t>(h + 2 * w + 50 * c + 7 * i);
  writeSvhnMat(dir / "train_32x32.mat", x, n, {10, 1, 9});
  const auto s = prep::readSvhn(dir / "train_32x32.mat");
  BOOST_TEST(s.labels == std::vector<std::int64_t>({0, 1, 9}));
  BOOST_TEST(s.images.size() == 3072 * n);
  bool same = true;
  for (std::size_t i = 0; i < n; ++i)
    for (int h = 0; h < 32; ++h)
      for (int w = 0; w < 32; ++w)
        for (int c = 0; c < 3; ++c)
          same &= s.images[i * 3072 + (h * 32 + w) * 3 + c] ==
                  static_cast<std::uint8_t>(h + 2 * w + 50 * c + 7 * i);
  BOOST_TEST(same);

  writeSvhnMat(dir / "bad_label.mat", x, n, {10, 11, 9});
  BOOST_TEST(errorOf([&] { prep::readSvhn(dir / "bad_label.mat"); }) ==
             (dir / "bad_label.mat").string() + ": label 11 of image 1 is not one of 1..10");
  writeSvhnMat(dir / "count.mat", x, n, {1, 2});
  BOOST_TEST(errorOf([&] { prep::readSvhn(dir / "count.mat"); }) ==
             (dir / "count.mat").string() + ": y has 2 labels (2x1), X 3 images");
  writeFile(dir / "text.mat", {'h', 'e', 'l', 'l', 'o'});
  BOOST_TEST(errorOf([&] { prep::readSvhn(dir / "text.mat"); }) ==
             (dir / "text.mat").string() +
                 ": not a MATLAB 5 or 7.3 MAT-file (no endian mark at byte 126 of a 128-byte "
                 "header)");
}

BOOST_AUTO_TEST_CASE(cifar100_records_fine_and_coarse) {
  const auto dir = metasemi::test::freshDir("prep_cifar100");
  // test.bin: 10000 records of coarse, fine, R plane, G plane, B plane.
  std::vector<std::uint8_t> bin(10000 * 3074);
  for (std::size_t i = 0; i < 10000; ++i) {
    std::uint8_t* r = bin.data() + i * 3074;
    r[0] = static_cast<std::uint8_t>(i % 20);
    r[1] = static_cast<std::uint8_t>(i % 100);
    for (int p = 0; p < 3072; ++p) r[2 + p] = static_cast<std::uint8_t>(p / 1024 * 100 + i % 7);
  }
  writeFile(dir / "test.bin", bin);
  const prep::ArchiveFiles files(dir);
  const auto fine = prep::readCifar100(files, false, true);
  const auto coarse = prep::readCifar100(files, false, false);
  BOOST_TEST(fine.size() == 10000);
  BOOST_TEST(fine.labels[123] == 23);
  BOOST_TEST(coarse.labels[123] == 3);
  // Planes become interleaved RGB: pixel 5 of image 3 is (0+3, 100+3, 200+3).
  BOOST_TEST(fine.images[3 * 3072 + 5 * 3 + 0] == 3);
  BOOST_TEST(fine.images[3 * 3072 + 5 * 3 + 1] == 103);
  BOOST_TEST(fine.images[3 * 3072 + 5 * 3 + 2] == 203);

  bin.resize(bin.size() - 100);
  writeFile(dir / "test.bin", bin);
  BOOST_TEST(errorOf([&] { prep::readCifar100(prep::ArchiveFiles(dir), false, true); }) ==
             (dir / "test.bin").string() +
                 ": 30739900 bytes, expected 10000 records of 3074 bytes (30740000 bytes)");
  BOOST_TEST(errorOf([&] { prep::readCifar100(prep::ArchiveFiles(dir), true, true); }) ==
             dir.string() + ": file train.bin not found in it");
  BOOST_TEST(errorOf([&] { prep::ArchiveFiles(dir / "missing.tar.gz"); }) ==
             (dir / "missing.tar.gz").string() + ": no such file or folder");
}
