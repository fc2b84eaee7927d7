// RAII access to HDF5 files: groups, typed n-d datasets, row-range reads, extendable datasets,
// attributes, and atomic output (write to a temporary name, rename when complete).
// Every failure throws core::IoError naming the file and object plus HDF5's error stack.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace metasemi::io {

/// Element types stored by the project.
enum class DType { kUInt8, kInt32, kInt64, kFloat32, kFloat64 };

/// Size in bytes of one element.
std::size_t dtypeSize(DType t);
/// "uint8", "int64", ... for messages.
std::string dtypeName(DType t);

/// Element type and shape of a stored dataset.
struct DatasetInfo {
  DType dtype = DType::kUInt8;
  std::vector<std::int64_t> shape;
  std::int64_t numElements() const;
};

/// Storage options for new datasets.
struct DatasetOptions {
  /// Rows (first dimension) per chunk; 0 = contiguous (no chunking, no compression).
  std::int64_t chunkRows = 0;
  /// gzip level 0-9 (needs chunkRows > 0); 0 = none.
  int compression = 0;
};

/// One open HDF5 file. Move-only; closed on destruction. Object names are HDF5 paths
/// ("images", "model/block1.0.weight", "/" for the file itself).
class H5File {
 public:
  enum class Mode { kRead, kReadWrite, kCreate /* truncates */ };

  H5File(const std::string& path, Mode mode);
  ~H5File();
  H5File(H5File&& other) noexcept;
  H5File& operator=(H5File&& other) noexcept;
  H5File(const H5File&) = delete;
  H5File& operator=(const H5File&) = delete;

  const std::string& path() const { return path_; }

  /// True when `name` (a group or dataset path) exists.
  bool exists(const std::string& name) const;
  /// True when `name` exists and is a dataset.
  bool isDataset(const std::string& name) const;
  /// Creates group `name` and any missing parents; no-op when it exists.
  void createGroup(const std::string& name);
  /// Names of the direct members of group `name`, in creation order when tracked, else sorted.
  std::vector<std::string> list(const std::string& name) const;

  /// Writes a new dataset of `shape` from `data` (row-major, dtype elements). Missing parent
  /// groups are created. Throws when it already exists.
  void write(const std::string& name, DType dtype, const void* data,
             const std::vector<std::int64_t>& shape, const DatasetOptions& options = {});
  /// Convenience for 1-d vectors of int64/double/uint8/float/int32.
  template <typename T>
  void writeVector(const std::string& name, const std::vector<T>& v,
                   const DatasetOptions& options = {});

  /// Type and shape of dataset `name` (IoError when it is missing or not a dataset).
  DatasetInfo info(const std::string& name) const;
  /// As info(), for a read of the whole dataset: IoError unless the file holds the data its
  /// shape declares (all of it when stored plainly; compressed, at most 1100 times the bytes
  /// stored, past deflate's largest ratio). Memory for a read then follows the file, never a
  /// header's claim.
  DatasetInfo infoForRead(const std::string& name) const;
  /// Reads the whole dataset converted to `dtype` into `out` (capacity `count` elements, which
  /// must equal the dataset's element count).
  void read(const std::string& name, DType dtype, void* out, std::int64_t count) const;
  /// Reads rows [first, first + rows) along the first dimension into `out`.
  void readRows(const std::string& name, DType dtype, std::int64_t first, std::int64_t rows,
                void* out) const;
  /// Reads a 1-d (or any) dataset into a vector of T.
  template <typename T>
  std::vector<T> readVector(const std::string& name) const;

  /// Creates an empty dataset that grows along the first dimension; rows have shape `rowShape`.
  void createExtendable(const std::string& name, DType dtype,
                        const std::vector<std::int64_t>& rowShape, const DatasetOptions& options);
  /// Appends `rows` rows from `data` to an extendable dataset.
  void append(const std::string& name, DType dtype, const void* data, std::int64_t rows);

  /// Attributes on object `object` ("/" for the file). Setting replaces an existing value.
  void setAttr(const std::string& object, const std::string& key, const std::string& value);
  void setAttr(const std::string& object, const std::string& key, const char* value);
  void setAttr(const std::string& object, const std::string& key, std::int64_t value);
  void setAttr(const std::string& object, const std::string& key, double value);
  void setAttr(const std::string& object, const std::string& key,
               const std::vector<std::string>& value);
  void setAttr(const std::string& object, const std::string& key, const std::vector<double>& value);
  bool hasAttr(const std::string& object, const std::string& key) const;
  std::string attrString(const std::string& object, const std::string& key) const;
  std::int64_t attrInt(const std::string& object, const std::string& key) const;
  double attrDouble(const std::string& object, const std::string& key) const;
  std::vector<std::string> attrStrings(const std::string& object, const std::string& key) const;
  std::vector<double> attrDoubles(const std::string& object, const std::string& key) const;

  /// Flushes buffers to disk.
  void flush();
  /// Closes the file now (the destructor does it otherwise). Later calls throw.
  void close();

 private:
  std::int64_t id_ = -1;  // hid_t
  std::string path_;
};

/// Output written under a temporary name in the same folder and renamed onto `finalPath` by
/// commit(). Without commit() (an error, an exception), the temporary file is removed, so an
/// interrupted run never leaves a file that looks valid.
class AtomicOutput {
 public:
  explicit AtomicOutput(std::string finalPath);
  ~AtomicOutput();
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  /// Where to write: `<final>.tmp.<pid>`.
  const std::string& tempPath() const { return tempPath_; }
  const std::string& finalPath() const { return finalPath_; }
  /// Syncs the temporary file to disk and renames it onto the final path.
  void commit();

 private:
  std::string finalPath_;
  std::string tempPath_;
  bool committed_ = false;
};

/// Maps C++ element types to DType.
template <typename T>
constexpr DType dtypeOf();
template <>
constexpr DType dtypeOf<std::uint8_t>() {
  return DType::kUInt8;
}
template <>
constexpr DType dtypeOf<std::int32_t>() {
  return DType::kInt32;
}
template <>
constexpr DType dtypeOf<std::int64_t>() {
  return DType::kInt64;
}
template <>
constexpr DType dtypeOf<float>() {
  return DType::kFloat32;
}
template <>
constexpr DType dtypeOf<double>() {
  return DType::kFloat64;
}

template <typename T>
void H5File::writeVector(const std::string& name, const std::vector<T>& v,
                         const DatasetOptions& options) {
  write(name, dtypeOf<T>(), v.data(), {static_cast<std::int64_t>(v.size())}, options);
}

template <typename T>
std::vector<T> H5File::readVector(const std::string& name) const {
  std::vector<T> v(static_cast<std::size_t>(infoForRead(name).numElements()));
  read(name, dtypeOf<T>(), v.data(), static_cast<std::int64_t>(v.size()));
  return v;
}

}  // namespace metasemi::io
