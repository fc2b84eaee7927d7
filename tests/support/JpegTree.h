// Real JPEG files for the preprocessing tests: the example images of Debian's opencv-doc
// (colour and grey, baseline and progressive), fetched once per build tree, laid out as an
// ImageNet-style class tree.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace metasemi::test {

/// opencv-doc's examples/data folder, extracted under METASEMI_TEST_TMP on first use
/// (apt-get download; the package lists are fetched when the first try fails), safely when
/// several tests ask at once. Fails the test when the package cannot be had.
std::filesystem::path openCvDocImages();

/// Every .jpg of openCvDocImages(), sorted (59 photos).
std::vector<std::filesystem::path> openCvDocJpegs();

/// The files of the three classes of a test tree: 5 colour photos, 5 grey camera-calibration
/// photos, 3 progressive JPEGs (13 in all).
const std::vector<std::vector<std::string>>& jpegClassFiles();

/// Copies class c's files to <root>/<classNames[c]>/<classNames[c]>_<k>.JPEG (k from 0), with
/// classNames.size() == 3.
void writeJpegClassTree(const std::filesystem::path& root,
                        const std::vector<std::string>& classNames);

}  // namespace metasemi::test
