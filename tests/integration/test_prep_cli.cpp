// metasemi-prep on the real Fashion-MNIST files and on a synthetic full-size CIFAR-10 archive;
// every bad input ends with one line naming the file, a non-zero exit and no output left.
#include <matio.h>
#include <zlib.h>

#include <fstream>
#include <numeric>

#include "metasemi/io/ShardSet.h"
#include "support/TestSupport.h"

namespace io = metasemi::io;
namespace fs = std::filesystem;
using metasemi::test::binary;
using metasemi::test::runCommand;

namespace {

std::string prep(const std::string& args) { return binary("metasemi-prep").string() + " " + args; }

// True when `dir` does not exist or holds no files (folders alone are fine).
bool noFiles(const fs::path& dir) {
  if (!fs::exists(dir)) return true;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) return false;
  }
  return true;
}

std::uint64_t pixelSum(const torch::Tensor& t) { return t.to(torch::kInt64).sum().item<int64_t>(); }

std::uint32_t crcOf(const torch::Tensor& t) {
  return static_cast<std::uint32_t>(
      crc32(0, t.data_ptr<std::uint8_t>(), static_cast<unsigned>(t.numel())));
}

}  // namespace

BOOST_AUTO_TEST_CASE(fashion_mnist_from_the_debian_package) {
  const auto dir = metasemi::test::freshDir("prep_cli_fashion");
  const auto in = metasemi::test::harnessEnv("METASEMI_FASHION_MNIST");
  const auto r = runCommand(prep("idx --input " + in + " --out " + (dir / "set").string()));
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output);

  const auto train = io::ShardSet::open(dir / "set", "train");
  const auto test = io::ShardSet::open(dir / "set", "test");
  BOOST_TEST(train.size() == 60000);
  BOOST_TEST(test.size() == 10000);
  BOOST_TEST(train.info().dataset == "fashion-mnist");
  BOOST_TEST(train.info().classNames.at(9) == "Ankle boot");
  const std::vector<std::int64_t> first(train.labels().begin(), train.labels().begin() + 8);
  BOOST_TEST(first == std::vector<std::int64_t>({9, 0, 0, 3, 0, 2, 7, 2}));
  const auto images = train.readImages(0, 60000);
  BOOST_TEST(images.sizes() == torch::IntArrayRef({60000, 28, 28, 1}));
  // Sum and CRC-32 of the decompressed pixel bytes (Python's gzip + zlib.crc32 agree).
  BOOST_TEST(pixelSum(images) == 3431114169ull);
  BOOST_TEST(crcOf(images) == 2925911245u);
  BOOST_TEST(pixelSum(test.readImages(0, 10000)) == 573469082ull);
  // Mean/std of the training pixels, used for both splits.
  BOOST_TEST(train.info().mean.at(0) == 3431114169.0 / (60000.0 * 784 * 255),
             boost::test_tools::tolerance(1e-12));
  BOOST_TEST(test.info().mean == train.info().mean);
  BOOST_TEST(test.info().statsSplit == "train");

  const auto s =
      runCommand(prep("split --set " + (dir / "set").string() + " --num-labels 1000 --seed 8469"));
  BOOST_REQUIRE_MESSAGE(s.exitCode == 0, s.output);
  const auto ls = train.labelSplit("labels-1000-seed8469");
  BOOST_TEST(ls.labeled.size() == 1000u);
  BOOST_TEST(ls.unlabeled.size() == 59000u);
  std::vector<int> perClass(10, 0);
  for (auto i : ls.labeled) ++perClass[static_cast<std::size_t>(train.labels()[i])];
  BOOST_TEST(perClass == std::vector<int>(10, 100));
  BOOST_TEST(fs::exists(dir / "set" / "splits" / "labels-1000-seed8469.label_indices.txt"));

  const auto v = runCommand(prep("verify --set " + (dir / "set").string()));
  BOOST_TEST(v.exitCode == 0, v.output);
  BOOST_TEST(v.output.find("split train OK (60000 images)") != std::string::npos, v.output);
  const auto info = runCommand(prep("info --set " + (dir / "set").string() + " --split train"));
  BOOST_TEST(info.exitCode == 0);
  BOOST_TEST(info.output.find("images:          60000") != std::string::npos, info.output);
  BOOST_TEST(info.output.find("label split:     labels-1000-seed8469 (1000 labeled, 59000 "
                              "unlabeled)") != std::string::npos,
             info.output);
}

namespace {

// Pixel byte j of CIFAR record i (planes R, G, B): a pattern that survives the conversion
// recognisably and compresses well.
std::uint8_t cifarPixel(std::size_t i, std::size_t j) {
  return static_cast<std::uint8_t>((i * 7 + j / 1024 * 80 + (j % 1024) / 32) & 0xff);
}

void writeCifarBatch(const fs::path& p, std::size_t firstRecord, std::size_t badRecord = ~0ul) {
  std::vector<std::uint8_t> buf(10000 * 3073);
  for (std::size_t r = 0; r < 10000; ++r) {
    const std::size_t i = firstRecord + r;
    std::uint8_t* rec = buf.data() + r * 3073;
    rec[0] = static_cast<std::uint8_t>(r == badRecord ? 10 : i % 10);
    for (std::size_t j = 0; j < 3072; ++j) rec[1 + j] = cifarPixel(i, j);
  }
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
}

void writeCifar10Folder(const fs::path& folder) {
  fs::create_directories(folder);
  for (int b = 1; b <= 5; ++b) {
    writeCifarBatch(folder / ("data_batch_" + std::to_string(b) + ".bin"), (b - 1) * 10000);
  }
  writeCifarBatch(folder / "test_batch.bin", 50000);
  std::ofstream meta(folder / "batches.meta.txt");
  for (int c = 0; c < 10; ++c) meta << "class" << c << "\n";
  meta << "\n";
}

}  // namespace

BOOST_AUTO_TEST_CASE(cifar10_from_the_tar_gz_and_from_the_folder) {
  const auto dir = metasemi::test::freshDir("prep_cli_cifar10");
  writeCifar10Folder(dir / "cifar-10-batches-bin");
  const auto tar =
      runCommand("cd " + dir.string() + " && tar czf cifar-10-binary.tar.gz cifar-10-batches-bin");
  BOOST_REQUIRE(tar.exitCode == 0);

  const auto a =
      runCommand(prep("cifar10 --input " + (dir / "cifar-10-binary.tar.gz").string() + " --out " +
                      (dir / "from_tar").string() + " --images-per-shard 20000"));
  BOOST_REQUIRE_MESSAGE(a.exitCode == 0, a.output);
  const auto b = runCommand(prep("cifar10 --input " + (dir / "cifar-10-batches-bin").string() +
                                 " --out " + (dir / "from_folder").string()));
  BOOST_REQUIRE_MESSAGE(b.exitCode == 0, b.output);

  const auto train = io::ShardSet::open(dir / "from_tar", "train");
  BOOST_TEST(train.size() == 50000);
  BOOST_TEST(train.info().shardSizes == std::vector<std::int64_t>({20000, 20000, 10000}));
  BOOST_TEST(train.info().classNames.at(3) == "class3");
  BOOST_TEST(train.labels()[12345] == 5);
  // Image 31234, pixel (row 5, col 9), channel G is plane byte 1024 + 5*32 + 9.
  const auto img = train.readImages(31234, 1);
  BOOST_TEST(img.index({0, 5, 9, 1}).item<int>() == cifarPixel(31234, 1024 + 5 * 32 + 9));
  const auto other = io::ShardSet::open(dir / "from_folder", "train");
  BOOST_TEST(crcOf(other.readImages(0, 50000)) == crcOf(train.readImages(0, 50000)));
  BOOST_TEST(other.info().mean == train.info().mean);
  const auto test = io::ShardSet::open(dir / "from_tar", "test");
  BOOST_TEST(test.size() == 10000);
  BOOST_TEST(test.readImages(9999, 1).index({0, 0, 0, 0}).item<int>() == cifarPixel(59999, 0));
}

namespace {

struct BadCase {
  std::string args;
  int exitCode;
  std::string message;  // the whole expected output line
};

void expectRejected(const BadCase& c, const fs::path& out) {
  const auto r = runCommand(prep(c.args));
  BOOST_TEST(r.exitCode == c.exitCode, c.args << "\n" << r.output);
  BOOST_TEST(r.output == c.message + "\n", c.args);
  BOOST_TEST(noFiles(out), c.args << ": output left in " << out);
}

}  // namespace

BOOST_AUTO_TEST_CASE(bad_inputs_are_one_line_and_leave_nothing) {
  const auto dir = metasemi::test::freshDir("prep_cli_bad");
  const std::string out = (dir / "out").string();
  const std::string fm = metasemi::test::harnessEnv("METASEMI_FASHION_MNIST");
  auto idxArgs = [&](const std::string& images, const std::string& labels) {
    return "idx --train-images " + images + " --train-labels " + labels + " --out " + out;
  };
  const std::string goodImages = fm + "/train-images-idx3-ubyte.gz";
  const std::string goodLabels = fm + "/train-labels-idx1-ubyte.gz";
  const std::string testLabels = fm + "/t10k-labels-idx1-ubyte.gz";

  // Files with defects, made from the real ones.
  {
    std::ofstream(dir / "text.idx") << "not an idx file at all";
    gzFile in = gzopen(goodLabels.c_str(), "rb");
    std::vector<char> buf(60008);
    gzread(in, buf.data(), static_cast<unsigned>(buf.size()));
    gzclose(in);
    gzFile cut = gzopen((dir / "cut.gz").c_str(), "wb");
    gzwrite(cut, buf.data(), 30000);
    gzclose(cut);
  }

  expectRejected({idxArgs(goodImages, (dir / "none.gz").string()), 3,
                  "metasemi-prep: " + (dir / "none.gz").string() + ": no such file"},
                 out);
  expectRejected({idxArgs(goodImages, (dir / "text.idx").string()), 3,
                  "metasemi-prep: " + (dir / "text.idx").string() +
                      ": wrong magic number 0x6e6f7420, expected 0x00000801 (IDX unsigned byte "
                      "data with 1 dimension)"},
                 out);
  expectRejected({idxArgs(goodImages, (dir / "cut.gz").string()), 3,
                  "metasemi-prep: " + (dir / "cut.gz").string() +
                      ": truncated: the header announces 60000 bytes of data (60000), found 29992"},
                 out);
  expectRejected({idxArgs(goodImages, testLabels), 3,
                  "metasemi-prep: " + testLabels + ": 10000 labels, but " + goodImages +
                      " holds 60000 images"},
                 out);

  // CIFAR-10: a label out of range, a truncated batch.
  writeCifar10Folder(dir / "cifar");
  writeCifarBatch(dir / "cifar" / "data_batch_3.bin", 20000, 77);
  expectRejected({"cifar10 --input " + (dir / "cifar").string() + " --out " + out, 3,
                  "metasemi-prep: " + (dir / "cifar" / "data_batch_3.bin").string() +
                      ": record 77 has label 10, expected 0..9"},
                 out);
  writeCifarBatch(dir / "cifar" / "data_batch_3.bin", 20000);
  fs::resize_file(dir / "cifar" / "test_batch.bin", 3073 * 9999 + 100);
  expectRejected({"cifar10 --input " + (dir / "cifar").string() + " --out " + out, 3,
                  "metasemi-prep: " + (dir / "cifar" / "test_batch.bin").string() +
                      ": 30727027 bytes, expected 10000 records of 3073 bytes (30730000 bytes)"},
                 out);
  fs::remove(dir / "cifar" / "test_batch.bin");
  expectRejected(
      {"cifar10 --input " + (dir / "cifar").string() + " --out " + out, 3,
       "metasemi-prep: " + (dir / "cifar").string() + ": file test_batch.bin not found in it"},
      out);
  expectRejected({"svhn --input " + dir.string() + " --out " + out, 3,
                  "metasemi-prep: " + (dir / "train_32x32.mat").string() + ": no such file"},
                 out);

  // Flags.
  expectRejected({"idx --input " + fm, 2, "metasemi-prep: --out is required"}, out);
  expectRejected({"resize --out " + out, 2,
                  "metasemi-prep: unknown subcommand 'resize' (run metasemi-prep --help)"},
                 out);

  // Label counts the data cannot give (on a small real set: the Fashion-MNIST test split).
  const auto set = dir / "set";
  const auto r = runCommand(prep("idx --test-images " + fm + "/t10k-images-idx3-ubyte.gz" +
                                 " --test-labels " + testLabels + " --out " + set.string()));
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output);
  expectRejected({"split --set " + set.string() + " --split test --num-labels 1005", 2,
                  "metasemi-prep: --num-labels 1005: the number of labels (1005) must be a "
                  "multiple of the number of classes (10)"},
                 set / "splits");
  expectRejected({"split --set " + set.string() + " --split test --num-labels 20000", 2,
                  "metasemi-prep: --num-labels 20000: 20000 labels need 2000 images of each "
                  "class, but class 0 has only 1000 in split test"},
                 set / "splits");
  expectRejected({"split --set " + set.string() + " --num-labels 100", 3,
                  "metasemi-prep: " + (set / "train.h5").string() +
                      ": split 'train' not found (splits here: test)"},
                 set / "splits");
}

namespace {

// An SVHN-style MATLAB v5 file of n images: X uint8 32x32x3xn (column-major), y double n x 1.
void writeSvhn(const fs::path& p, std::size_t n, std::uint8_t base) {
  std::vector<std::uint8_t> x(3072 * n);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<std::uint8_t>(base + i % 97);
  std::vector<double> y(n);
  for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<double>(i % 10 + 1);
  mat_t* m = Mat_CreateVer(p.c_str(), nullptr, MAT_FT_MAT5);
  std::size_t dx[4] = {32, 32, 3, n};
  matvar_t* vx = Mat_VarCreate("X", MAT_C_UINT8, MAT_T_UINT8, 4, dx, x.data(), 0);
  Mat_VarWrite(m, vx, MAT_COMPRESSION_ZLIB);
  Mat_VarFree(vx);
  std::size_t dy[2] = {n, 1};
  matvar_t* vy = Mat_VarCreate("y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dy, y.data(), 0);
  Mat_VarWrite(m, vy, MAT_COMPRESSION_NONE);
  Mat_VarFree(vy);
  Mat_Close(m);
}

}  // namespace

BOOST_AUTO_TEST_CASE(svhn_mat_files_end_to_end) {
  const auto dir = metasemi::test::freshDir("prep_cli_svhn");
  writeSvhn(dir / "train_32x32.mat", 30, 10);
  writeSvhn(dir / "test_32x32.mat", 12, 50);
  const auto r =
      runCommand(prep("svhn --input " + dir.string() + " --out " + (dir / "set").string()));
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output);
  const auto train = io::ShardSet::open(dir / "set", "train");
  const auto test = io::ShardSet::open(dir / "set", "test");
  BOOST_TEST(train.size() == 30);
  BOOST_TEST(test.size() == 12);
  // y = 1..10 repeating; 10 is digit 0.
  BOOST_TEST(train.labels()[0] == 1);
  BOOST_TEST(train.labels()[9] == 0);
  BOOST_TEST(train.info().classNames.at(0) == "0");
  BOOST_TEST(test.info().mean == train.info().mean);
  const auto v =
      runCommand(prep("split --set " + (dir / "set").string() + " --num-labels 20 --seed 7788"));
  BOOST_TEST(v.exitCode == 0, v.output);
  BOOST_TEST(train.labelSplit("labels-20-seed7788").unlabeled.size() == 10u);
  // --extra without the file.
  const auto e = runCommand(
      prep("svhn --extra --input " + dir.string() + " --out " + (dir / "other").string()));
  BOOST_TEST(e.exitCode == 3);
  BOOST_TEST(e.output ==
             "metasemi-prep: " + (dir / "extra_32x32.mat").string() + ": no such file\n");
  BOOST_TEST(noFiles(dir / "other"));
}
