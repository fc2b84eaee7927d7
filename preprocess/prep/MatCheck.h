// Structural check of a MATLAB 5 MAT-file before matio reads it. matio does not check its
// reads: a file cut short inside a variable yields zeros or uninitialised memory in its place.
// This walks the file's data elements (inflating compressed ones, a bounded buffer at a time)
// and refuses any variable whose bytes are not all there.
#pragma once

#include <cstdint>
#include <filesystem>

namespace metasemi::prep {

/// Largest variable (its uncompressed bytes) a MAT-file may hold here: SVHN's `extra` images
/// are 1.6 GB; 4 GiB bounds the memory matio allocates whatever a header claims.
constexpr std::uint64_t kMaxMatVariableBytes = std::uint64_t{4} << 30;

/// Throws core::IoError naming the file (and the variable, where it has one) when a Level 5
/// MAT-file is truncated, a compressed variable does not inflate to its declared size, or a
/// variable's data is shorter than its dimensions need; and for files that are neither Level 5
/// nor v7.3 (HDF5, which checks its own reads: those go to matio unchecked).
void checkMatFile(const std::filesystem::path& path);

}  // namespace metasemi::prep
