// The labeled/unlabeled split of an ImageNet-style training tree, as file lists (it never
// copies images; the reference copies ~150 GB).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace metasemi::prep {

/// One image of a class-folder tree: its class folder and its path relative to the root.
struct TreeImage {
  std::string label;    ///< class folder name (e.g. a synset "n01440764")
  std::string relPath;  ///< "n01440764/n01440764_10026.JPEG"
};

/// The images of `root/<class>/*`, classes and files in sorted order; hidden files (".x") are
/// ignored. Throws core::IoError for a missing root, a root without class folders, or an
/// empty class folder.
std::vector<TreeImage> scanClassTree(const std::filesystem::path& root);

/// Reads a list in the reference's format (first whitespace-separated token of each non-empty
/// line is `class/file`). Throws core::IoError naming file and line for a malformed line.
std::vector<TreeImage> readImageList(const std::filesystem::path& list);

/// The class-balanced labeled subset: from each class, round(fraction·n) images (at least 1),
/// chosen by a seeded shuffle of its sorted files. Returns {labeled, unlabeled}, both sorted.
std::pair<std::vector<TreeImage>, std::vector<TreeImage>> balancedFraction(
    const std::vector<TreeImage>& images, double fraction, std::uint64_t seed);

/// `metasemi-prep imagenet-split` with its command-line arguments (after the subcommand).
int runImagenetSplit(const std::vector<std::string>& args);

}  // namespace metasemi::prep
