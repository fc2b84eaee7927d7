// HDF5 basics shared by every file format of the project. <hdf5.h> itself is included only by
// io/*.cpp; public headers never expose hid_t.
#pragma once

#include <string>

namespace metasemi::io {

/// "1.10.8": the HDF5 library this program runs with (H5get_libversion).
std::string hdf5Version();

/// Switches off HDF5's automatic error printing; errors reach callers as exceptions whose text
/// carries HDF5's error stack. Called once by the library before any HDF5 use; idempotent.
void silenceHdf5Errors();

}  // namespace metasemi::io
