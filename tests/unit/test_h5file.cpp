// The HDF5 layer: typed round trips, row ranges, extendable datasets, attributes, atomic output
// and the error lines for bad files.
#include <fstream>

#include "metasemi/core/Error.h"
#include "metasemi/io/H5File.h"
#include "metasemi/io/TensorIo.h"
#include "support/TestSupport.h"

using metasemi::core::IoError;
using metasemi::io::AtomicOutput;
using metasemi::io::DType;
using metasemi::io::H5File;
using metasemi::test::errorOf;

BOOST_AUTO_TEST_CASE(tensors_of_every_type_round_trip_bit_exactly) {
  const auto dir = metasemi::test::freshDir("h5file_tensors");
  const std::string path = (dir / "t.h5").string();
  torch::manual_seed(3);
  std::vector<torch::Tensor> tensors = {torch::randint(0, 255, {4, 5, 3}, torch::kUInt8),
                                        torch::randint(-9, 9, {7}, torch::kInt32),
                                        torch::randint(-1000000, 1000000, {2, 3}, torch::kInt64),
                                        torch::randn({3, 3, 2, 2}),
                                        torch::randn({5}, torch::kFloat64),
                                        torch::tensor(2.5),
                                        torch::empty({0, 3})};
  {
    H5File f(path, H5File::Mode::kCreate);
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      metasemi::io::writeTensor(f, "group/sub/t" + std::to_string(i), tensors[i]);
    }
  }
  H5File f(path, H5File::Mode::kRead);
  BOOST_TEST(f.list("group/sub").size() == tensors.size());
  BOOST_TEST(f.list("group/sub")[0] == "t0");  // creation order
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto back = metasemi::io::readTensor(f, "group/sub/t" + std::to_string(i));
    BOOST_TEST(back.scalar_type() == tensors[i].scalar_type());
    BOOST_TEST(back.sizes().vec() == tensors[i].sizes().vec());
    BOOST_TEST(torch::equal(back, tensors[i]), "tensor " << i);
  }
}

BOOST_AUTO_TEST_CASE(row_ranges_and_extendable_datasets) {
  const auto dir = metasemi::test::freshDir("h5file_rows");
  const std::string path = (dir / "rows.h5").string();
  std::vector<std::uint8_t> rows(10 * 6);
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<std::uint8_t>(i);
  {
    H5File f(path, H5File::Mode::kCreate);
    f.write("fixed", DType::kUInt8, rows.data(), {10, 2, 3}, {4, 6});
    f.createExtendable("grow", DType::kUInt8, {2, 3}, {3, 0});
    f.append("grow", DType::kUInt8, rows.data(), 4);
    f.append("grow", DType::kUInt8, rows.data() + 24, 6);
  }
  H5File f(path, H5File::Mode::kRead);
  for (const char* name : {"fixed", "grow"}) {
    BOOST_TEST((f.info(name).shape == std::vector<std::int64_t>{10, 2, 3}));
    std::vector<std::uint8_t> part(3 * 6);
    f.readRows(name, DType::kUInt8, 5, 3, part.data());
    BOOST_TEST(std::equal(part.begin(), part.end(), rows.begin() + 30), name);
  }
  std::vector<std::uint8_t> out(6);
  BOOST_TEST(errorOf([&] {
               f.readRows("fixed", DType::kUInt8, 9, 2, out.data());
             }).find("outside dataset 'fixed'") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(attributes_of_every_kind) {
  const auto dir = metasemi::test::freshDir("h5file_attrs");
  const std::string path = (dir / "a.h5").string();
  {
    H5File f(path, H5File::Mode::kCreate);
    f.writeVector<std::int64_t>("labels", {1, 2, 3});
    f.setAttr("/", "dataset", "fashion-mnist");
    f.setAttr("/", "version", std::int64_t{3});
    f.setAttr("labels", "scale", 0.25);
    f.setAttr("/", "classes", std::vector<std::string>{"T-shirt/top", "Trouser", ""});
    f.setAttr("/", "mean", std::vector<double>{0.1, 0.2});
    f.setAttr("/", "version", std::int64_t{4});  // replaces
  }
  H5File f(path, H5File::Mode::kRead);
  BOOST_TEST(f.attrString("/", "dataset") == "fashion-mnist");
  BOOST_TEST(f.attrInt("/", "version") == 4);
  BOOST_TEST(f.attrDouble("labels", "scale") == 0.25);
  BOOST_TEST(
      (f.attrStrings("/", "classes") == std::vector<std::string>{"T-shirt/top", "Trouser", ""}));
  BOOST_TEST((f.attrDoubles("/", "mean") == std::vector<double>{0.1, 0.2}));
  BOOST_TEST(f.hasAttr("/", "mean"));
  BOOST_TEST(!f.hasAttr("/", "std"));
  BOOST_TEST((f.readVector<std::int64_t>("labels") == std::vector<std::int64_t>{1, 2, 3}));
  BOOST_TEST(errorOf([&] { f.attrInt("/", "std"); }).find("missing attribute 'std'") !=
             std::string::npos);
  BOOST_TEST(errorOf([&] { f.info("images"); }) == "'" + path + "': missing dataset 'images'");
}

BOOST_AUTO_TEST_CASE(bad_files_give_one_clear_line) {
  const auto dir = metasemi::test::freshDir("h5file_bad");
  const std::string missing = (dir / "missing.h5").string();
  BOOST_TEST(errorOf([&] { H5File f(missing, H5File::Mode::kRead); }) ==
             "'" + missing + "': no such file");
  const std::string text = (dir / "text.h5").string();
  std::ofstream(text) << "not hdf5\n";
  BOOST_TEST(errorOf([&] { H5File f(text, H5File::Mode::kRead); }) ==
             "'" + text + "': not an HDF5 file (or truncated)");
  // A file cut short after writing is reported, not read as valid.
  const std::string good = (dir / "good.h5").string();
  {
    H5File f(good, H5File::Mode::kCreate);
    metasemi::io::writeTensor(f, "x", torch::randn({256, 256}));
  }
  const std::string cut = (dir / "cut.h5").string();
  std::filesystem::copy_file(good, cut);
  std::filesystem::resize_file(cut, std::filesystem::file_size(good) / 2);
  const std::string msg = errorOf([&] {
    H5File f(cut, H5File::Mode::kRead);
    metasemi::io::readTensor(f, "x");
  });
  BOOST_TEST(msg.find(cut) != std::string::npos, msg);
}

BOOST_AUTO_TEST_CASE(atomic_output_leaves_nothing_unless_committed) {
  const auto dir = metasemi::test::freshDir("h5file_atomic");
  const std::string final = (dir / "out.h5").string();
  std::string temp;
  try {
    AtomicOutput out(final);
    temp = out.tempPath();
    H5File f(out.tempPath(), H5File::Mode::kCreate);
    f.writeVector<double>("x", {1.0});
    throw std::runtime_error("interrupted");
  } catch (const std::runtime_error&) {
  }
  BOOST_TEST(!std::filesystem::exists(final));
  BOOST_TEST(!std::filesystem::exists(temp));
  {
    AtomicOutput out(final);
    {
      H5File f(out.tempPath(), H5File::Mode::kCreate);
      f.writeVector<double>("x", {2.0});
    }
    out.commit();
  }
  H5File f(final, H5File::Mode::kRead);
  BOOST_TEST(f.readVector<double>("x")[0] == 2.0);
}
