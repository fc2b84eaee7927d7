#include "support/JpegTree.h"

#include <boost/test/unit_test.hpp>

#include <algorithm>

#include "support/TestSupport.h"

namespace fs = std::filesystem;

namespace metasemi::test {

fs::path openCvDocImages() {
  const fs::path cache = fs::path(harnessEnv("METASEMI_TEST_TMP")) / "opencv-doc";
  const fs::path data = cache / "x" / "usr" / "share" / "doc" / "opencv-doc" / "examples" / "data";
  if (!fs::exists(data / "HappyFish.jpg")) {
    fs::create_directories(cache);
    // flock: the tests that need the images may run at the same time. The folder appears whole
    // (unpacked aside, then renamed), so that a test that finds it without the lock finds every
    // file in it.
    const auto r = runCommand(
        "cd " + cache.string() +
        " && flock fetch.lock sh -c 'test -f x/usr/share/doc/opencv-doc/examples/data/"
        "HappyFish.jpg || { { ls opencv-doc_*.deb > /dev/null 2>&1 || apt-get download opencv-doc "
        "|| { apt-get update -q && apt-get download opencv-doc; }; } && rm -rf x.tmp x && "
        "dpkg-deb -x opencv-doc_*.deb x.tmp && mv x.tmp x; }'");
    BOOST_REQUIRE_MESSAGE(r.exitCode == 0 && fs::exists(data / "HappyFish.jpg"),
                          "could not get opencv-doc: " << r.output);
  }
  return data;
}

std::vector<fs::path> openCvDocJpegs() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(openCvDocImages()))
    if (e.path().extension() == ".jpg") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

const std::vector<std::vector<std::string>>& jpegClassFiles() {
  static const std::vector<std::vector<std::string>> files = {
      {"HappyFish.jpg", "LinuxLogo.jpg", "aero1.jpg", "butterfly.jpg", "home.jpg"},
      {"left01.jpg", "left02.jpg", "left03.jpg", "right01.jpg", "right02.jpg"},
      {"Blender_Suzanne1.jpg", "Blender_Suzanne2.jpg", "stuff.jpg"}};
  return files;
}

void writeJpegClassTree(const fs::path& root, const std::vector<std::string>& classNames) {
  const auto& files = jpegClassFiles();
  BOOST_REQUIRE_EQUAL(classNames.size(), files.size());
  const fs::path images = openCvDocImages();
  for (std::size_t c = 0; c < files.size(); ++c) {
    fs::create_directories(root / classNames[c]);
    for (std::size_t k = 0; k < files[c].size(); ++k) {
      fs::copy_file(images / files[c][k],
                    root / classNames[c] / (classNames[c] + "_" + std::to_string(k) + ".JPEG"));
    }
  }
}

}  // namespace metasemi::test
