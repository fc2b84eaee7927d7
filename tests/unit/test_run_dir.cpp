// io::RunDir: what the trainer writes, postprocessing reads back through the same class; bad
// rows name the file and line; the writable-folder probe.
#include <fstream>

#include "metasemi/io/RunDir.h"
#include "support/TestSupport.h"

namespace fs = std::filesystem;
using namespace metasemi;

BOOST_AUTO_TEST_CASE(written_files_read_back) {
  const io::RunDir dir(test::freshDir("run_dir_round_trip") / "run" / "seed1");
  BOOST_TEST(!io::RunDir::isRunDir(dir.dir()));
  dir.prepare();
  dir.writeConfig("seed = 1\nlr = 0.1\n");
  dir.writeLabelIndices({5, 0, 123456789});
  dir.appendMetrics({{"kind", "train"}, {"step", 100}});
  dir.appendMetrics({{"kind", "eval"}, {"step", 400}, {"top1_error", 12.5}});
  BOOST_TEST(io::RunDir::isRunDir(dir.dir()));
  BOOST_TEST(dir.readConfig() == "seed = 1\nlr = 0.1\n");
  BOOST_TEST(dir.readLabelIndices() == (std::vector<std::int64_t>{5, 0, 123456789}),
             boost::test_tools::per_element());
  const auto rows = dir.readMetrics();
  BOOST_REQUIRE(rows.size() == 2u);
  BOOST_TEST(rows[0].line == 1);
  BOOST_TEST(rows[1].value["top1_error"].get<double>() == 12.5);
  for (const auto& e : fs::directory_iterator(dir.dir())) {
    BOOST_TEST(e.path().filename().string().find(".tmp") == std::string::npos, e.path());
  }
}

BOOST_AUTO_TEST_CASE(bad_rows_name_file_and_line) {
  const io::RunDir dir(test::freshDir("run_dir_bad_rows"));
  {
    std::ofstream f(dir.path(io::RunDir::kMetrics));
    f << R"({"kind":"train","step":1})"
      << "\n\n"
      << R"({"step":2})"
      << "\n";
  }
  auto msg = test::errorOf([&] { dir.readMetrics(); });
  BOOST_TEST(msg.find("metrics.jsonl:3") != std::string::npos, msg);
  BOOST_TEST(msg.find("\"kind\"") != std::string::npos, msg);
  {
    std::ofstream f(dir.path(io::RunDir::kMetrics));
    f << "{not json\n";
  }
  msg = test::errorOf([&] { dir.readMetrics(); });
  BOOST_TEST(msg.find("metrics.jsonl:1: not a JSON object") != std::string::npos, msg);
  {
    std::ofstream f(dir.path(io::RunDir::kLabelIndices));
    f << "1\n-2\n";
  }
  msg = test::errorOf([&] { dir.readLabelIndices(); });
  BOOST_TEST(msg.find("label_indices.txt:2") != std::string::npos, msg);
  msg = test::errorOf([&] { dir.readConfig(); });
  BOOST_TEST(msg.find("config.cfg: missing") != std::string::npos, msg);
}

BOOST_AUTO_TEST_CASE(writable_folder_probe) {
  const fs::path base = test::freshDir("run_dir_probe");
  io::requireWritableFolder(base, "--out", false);
  auto msg = test::errorOf([&] { io::requireWritableFolder(base / "absent", "--out", false); });
  BOOST_TEST(msg.find("--out: no folder") != std::string::npos, msg);
  { std::ofstream(base / "file") << "x"; }
  msg =
      test::errorOf([&] { io::requireWritableFolder(base / "file" / "sub", "--save-path", true); });
  BOOST_TEST(msg.find("--save-path: cannot create folder") != std::string::npos, msg);
  for (const auto& e : fs::directory_iterator(base)) {
    BOOST_TEST(e.path().filename().string().find(".write-test") == std::string::npos);
  }
}
