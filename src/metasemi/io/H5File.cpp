#include "metasemi/io/H5File.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "metasemi/core/Files.h"
#include "metasemi/io/Hdf5.h"
#include "metasemi/io/Hdf5Check.h"

namespace metasemi::io {
namespace {

void closeId(hid_t id) {
  switch (H5Iget_type(id)) {
    case H5I_GROUP:
      H5Gclose(id);
      break;
    case H5I_DATASET:
      H5Dclose(id);
      break;
    case H5I_DATATYPE:
      H5Tclose(id);
      break;
    case H5I_DATASPACE:
      H5Sclose(id);
      break;
    case H5I_ATTR:
      H5Aclose(id);
      break;
    case H5I_GENPROP_LST:
      H5Pclose(id);
      break;
    default:
      break;
  }
}

// Closes an HDF5 identifier of any kind when it leaves scope.
class Handle {
 public:
  explicit Handle(hid_t id = H5I_INVALID_HID) : id_(id) {}
  ~Handle() { reset(); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  void reset(hid_t id = H5I_INVALID_HID) {
    if (id_ >= 0) closeId(id_);
    id_ = id;
  }

 private:
  hid_t id_;
};

hid_t nativeType(DType t) {
  switch (t) {
    case DType::kUInt8:
      return H5T_NATIVE_UINT8;
    case DType::kInt32:
      return H5T_NATIVE_INT32;
    case DType::kInt64:
      return H5T_NATIVE_INT64;
    case DType::kFloat32:
      return H5T_NATIVE_FLOAT;
    case DType::kFloat64:
      return H5T_NATIVE_DOUBLE;
  }
  return H5T_NATIVE_UINT8;
}

// The DType of a stored HDF5 type (integers and floats of the sizes the project writes).
DType dtypeFromH5(hid_t type, const std::string& what) {
  const H5T_class_t cls = H5Tget_class(type);
  const std::size_t size = H5Tget_size(type);
  if (cls == H5T_INTEGER) {
    const bool isSigned = H5Tget_sign(type) == H5T_SGN_2;
    if (size == 1 && !isSigned) return DType::kUInt8;
    if (size == 4 && isSigned) return DType::kInt32;
    if (size == 8 && isSigned) return DType::kInt64;
  } else if (cls == H5T_FLOAT) {
    if (size == 4) return DType::kFloat32;
    if (size == 8) return DType::kFloat64;
  }
  MS_THROW(core::IoError, "{}: unsupported element type (class {}, {} bytes)", what,
           static_cast<int>(cls), size);
}

std::string where(const std::string& path, const std::string& name) {
  return fmt::format("'{}' ({})", path, name);
}

// True when every value of `stored` is exactly a value of `wanted`: HDF5 would otherwise
// convert silently (float32 images to uint8 become black images; int64 to int32 clip).
bool convertsExactly(DType stored, DType wanted) {
  if (stored == wanted) return true;
  switch (stored) {
    case DType::kUInt8:
      return true;
    case DType::kInt32:
      return wanted == DType::kInt64 || wanted == DType::kFloat64;
    case DType::kFloat32:
      return wanted == DType::kFloat64;
    default:
      return false;
  }
}

void requireExactConversion(const std::string& path, const std::string& name, DType stored,
                            DType wanted) {
  MS_REQUIRE(convertsExactly(stored, wanted), core::IoError,
             "'{}': dataset '{}' holds {} values, expected {}", path, name, dtypeName(stored),
             dtypeName(wanted));
}

// Selects rows [first, first + rows) of the dataset space `fspace` whose extent is `dims`, and
// returns a memory space of that selection's shape (the caller closes it).
hid_t selectRows(hid_t fspace, std::vector<hsize_t> dims, hsize_t first, hsize_t rows,
                 const std::string& what) {
  std::vector<hsize_t> start(dims.size(), 0);
  start[0] = first;
  dims[0] = rows;
  MS_H5_CHECK(
      H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start.data(), nullptr, dims.data(), nullptr),
      what);
  return MS_H5_CHECK(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), what);
}

}  // namespace

std::size_t dtypeSize(DType t) {
  switch (t) {
    case DType::kUInt8:
      return 1;
    case DType::kInt32:
      return 4;
    case DType::kFloat32:
      return 4;
    case DType::kInt64:
      return 8;
    case DType::kFloat64:
      return 8;
  }
  return 1;
}

std::string dtypeName(DType t) {
  switch (t) {
    case DType::kUInt8:
      return "uint8";
    case DType::kInt32:
      return "int32";
    case DType::kInt64:
      return "int64";
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
  }
  return "?";
}

std::int64_t DatasetInfo::numElements() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

H5File::H5File(const std::string& path, Mode mode) : path_(path) {
  silenceHdf5Errors();
  if (mode == Mode::kCreate) {
    Handle fapl(MS_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), path));
    // Readable by HDF5 1.8+ tools and h5py builds of any age.
    MS_H5_CHECK(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_EARLIEST, H5F_LIBVER_LATEST), path);
    Handle fcpl(MS_H5_CHECK(H5Pcreate(H5P_FILE_CREATE), path));
    MS_H5_CHECK(
        H5Pset_link_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED),
        path);
    id_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get());
    if (id_ < 0) {
      detail::hdf5ErrorStack();
      MS_THROW(core::IoError, "cannot create HDF5 file '{}': {}", path,
               std::strerror(errno ? errno : EIO));
    }
    return;
  }
  const std::string problem = core::fileProblem(path);
  MS_REQUIRE(problem.empty(), core::IoError, "'{}': {}", path, problem);
  MS_REQUIRE(::access(path.c_str(), mode == Mode::kRead ? R_OK : R_OK | W_OK) == 0, core::IoError,
             "'{}': cannot open: {}", path, std::strerror(errno));
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    detail::hdf5ErrorStack();
    MS_THROW(core::IoError, "'{}': not an HDF5 file (or truncated)", path);
  }
  id_ = H5Fopen(path.c_str(), mode == Mode::kRead ? H5F_ACC_RDONLY : H5F_ACC_RDWR, H5P_DEFAULT);
  if (id_ < 0) {
    const std::string stack = detail::hdf5ErrorStack();
    MS_THROW(core::IoError, "cannot open HDF5 file '{}': {}", path, stack);
  }
}

H5File::~H5File() {
  if (id_ >= 0) H5Fclose(id_);
}

H5File::H5File(H5File&& other) noexcept : id_(other.id_), path_(std::move(other.path_)) {
  other.id_ = -1;
}

H5File& H5File::operator=(H5File&& other) noexcept {
  if (this != &other) {
    if (id_ >= 0) H5Fclose(id_);
    id_ = other.id_;
    path_ = std::move(other.path_);
    other.id_ = -1;
  }
  return *this;
}

void H5File::close() {
  if (id_ >= 0) {
    const hid_t id = id_;
    id_ = -1;
    MS_H5_CHECK(H5Fclose(id), path_);
  }
}

void H5File::flush() { MS_H5_CHECK(H5Fflush(id_, H5F_SCOPE_GLOBAL), path_); }

bool H5File::exists(const std::string& name) const {
  MS_CHECK(id_ >= 0, "'{}' is closed", path_);
  if (name == "/" || name.empty()) return true;
  // Check every prefix: H5Lexists fails (not false) when a parent is missing.
  std::size_t pos = 0;
  while (true) {
    pos = name.find('/', pos + 1);
    const std::string prefix = name.substr(0, pos);
    if (!prefix.empty() && prefix != "/") {
      const htri_t e = H5Lexists(id_, prefix.c_str(), H5P_DEFAULT);
      if (e <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return false;
      }
    }
    if (pos == std::string::npos) return true;
  }
}

bool H5File::isDataset(const std::string& name) const {
  if (!exists(name)) return false;
  H5O_info_t oinfo;
  MS_H5_CHECK(H5Oget_info_by_name(id_, name.c_str(), &oinfo, H5P_DEFAULT), where(path_, name));
  return oinfo.type == H5O_TYPE_DATASET;
}

void H5File::createGroup(const std::string& name) {
  if (exists(name)) return;
  Handle lcpl(MS_H5_CHECK(H5Pcreate(H5P_LINK_CREATE), path_));
  MS_H5_CHECK(H5Pset_create_intermediate_group(lcpl.get(), 1), path_);
  Handle gcpl(MS_H5_CHECK(H5Pcreate(H5P_GROUP_CREATE), path_));
  MS_H5_CHECK(H5Pset_link_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED),
              path_);
  Handle g(MS_H5_CHECK(H5Gcreate2(id_, name.c_str(), lcpl.get(), gcpl.get(), H5P_DEFAULT),
                       where(path_, name)));
}

std::vector<std::string> H5File::list(const std::string& name) const {
  MS_REQUIRE(exists(name), core::IoError, "'{}': no group '{}'", path_, name);
  Handle g(MS_H5_CHECK(H5Gopen2(id_, name.c_str(), H5P_DEFAULT), where(path_, name)));
  std::vector<std::string> out;
  auto visit = [](hid_t, const char* member, const H5L_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(member);
    return 0;
  };
  hsize_t idx = 0;
  if (H5Literate(g.get(), H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, visit, &out) < 0) {
    // Groups written without creation-order tracking: fall back to name order.
    H5Eclear2(H5E_DEFAULT);
    out.clear();
    idx = 0;
    MS_H5_CHECK(H5Literate(g.get(), H5_INDEX_NAME, H5_ITER_INC, &idx, visit, &out),
                where(path_, name));
  }
  return out;
}

void H5File::write(const std::string& name, DType dtype, const void* data,
                   const std::vector<std::int64_t>& shape, const DatasetOptions& options) {
  MS_REQUIRE(!exists(name), core::IoError, "'{}': dataset '{}' already exists", path_, name);
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  Handle space(MS_H5_CHECK(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                           where(path_, name)));
  Handle lcpl(MS_H5_CHECK(H5Pcreate(H5P_LINK_CREATE), path_));
  MS_H5_CHECK(H5Pset_create_intermediate_group(lcpl.get(), 1), path_);
  Handle dcpl(MS_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), path_));
  if (options.chunkRows > 0 && !dims.empty() && dims[0] > 0) {
    std::vector<hsize_t> chunk = dims;
    chunk[0] = std::min<hsize_t>(dims[0], static_cast<hsize_t>(options.chunkRows));
    MS_H5_CHECK(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), path_);
    if (options.compression > 0)
      MS_H5_CHECK(H5Pset_deflate(dcpl.get(), options.compression), path_);
  }
  Handle ds(MS_H5_CHECK(H5Dcreate2(id_, name.c_str(), nativeType(dtype), space.get(), lcpl.get(),
                                   dcpl.get(), H5P_DEFAULT),
                        where(path_, name)));
  if (H5Sget_simple_extent_npoints(space.get()) > 0) {
    MS_H5_CHECK(H5Dwrite(ds.get(), nativeType(dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
                where(path_, name));
  }
}

DatasetInfo H5File::info(const std::string& name) const {
  MS_REQUIRE(isDataset(name), core::IoError, "'{}': missing dataset '{}'", path_, name);
  Handle ds(MS_H5_CHECK(H5Dopen2(id_, name.c_str(), H5P_DEFAULT), where(path_, name)));
  Handle type(MS_H5_CHECK(H5Dget_type(ds.get()), where(path_, name)));
  Handle space(MS_H5_CHECK(H5Dget_space(ds.get()), where(path_, name)));
  DatasetInfo out;
  out.dtype = dtypeFromH5(type.get(), where(path_, name));
  const int rank = MS_H5_CHECK(H5Sget_simple_extent_ndims(space.get()), where(path_, name));
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  MS_H5_CHECK(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), where(path_, name));
  out.shape.assign(dims.begin(), dims.end());
  return out;
}

DatasetInfo H5File::infoForRead(const std::string& name) const {
  const DatasetInfo di = info(name);
  if (di.numElements() == 0) return di;
  Handle ds(MS_H5_CHECK(H5Dopen2(id_, name.c_str(), H5P_DEFAULT), where(path_, name)));
  Handle plist(MS_H5_CHECK(H5Dget_create_plist(ds.get()), where(path_, name)));
  const int filters = H5Pget_nfilters(plist.get());
  const auto stored = static_cast<double>(H5Dget_storage_size(ds.get()));
  const double declared =
      static_cast<double>(di.numElements()) * static_cast<double>(dtypeSize(di.dtype));
  const bool plausible = filters > 0 ? declared <= stored * 1100.0 + 65536.0 : stored >= declared;
  MS_REQUIRE(plausible, core::IoError,
             "'{}': dataset '{}' declares {} elements ({:.0f} bytes) but the file stores {:.0f} "
             "bytes of it",
             path_, name, di.numElements(), declared, stored);
  return di;
}

void H5File::read(const std::string& name, DType dtype, void* out, std::int64_t count) const {
  const DatasetInfo di = info(name);
  MS_REQUIRE(di.numElements() == count, core::IoError,
             "'{}': dataset '{}' has {} elements, expected {}", path_, name, di.numElements(),
             count);
  requireExactConversion(path_, name, di.dtype, dtype);
  if (count == 0) return;
  Handle ds(MS_H5_CHECK(H5Dopen2(id_, name.c_str(), H5P_DEFAULT), where(path_, name)));
  MS_H5_CHECK(H5Dread(ds.get(), nativeType(dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, out),
              where(path_, name));
}

void H5File::readRows(const std::string& name, DType dtype, std::int64_t first, std::int64_t rows,
                      void* out) const {
  const DatasetInfo di = info(name);
  MS_REQUIRE(!di.shape.empty() && first >= 0 && rows >= 0 && first + rows <= di.shape[0],
             core::IoError, "'{}': rows [{}, {}) are outside dataset '{}' of {} rows", path_, first,
             first + rows, name, di.shape.empty() ? 0 : di.shape[0]);
  requireExactConversion(path_, name, di.dtype, dtype);
  if (rows == 0) return;
  Handle ds(MS_H5_CHECK(H5Dopen2(id_, name.c_str(), H5P_DEFAULT), where(path_, name)));
  Handle fspace(MS_H5_CHECK(H5Dget_space(ds.get()), where(path_, name)));
  Handle mspace(selectRows(fspace.get(), {di.shape.begin(), di.shape.end()},
                           static_cast<hsize_t>(first), static_cast<hsize_t>(rows),
                           where(path_, name)));
  MS_H5_CHECK(H5Dread(ds.get(), nativeType(dtype), mspace.get(), fspace.get(), H5P_DEFAULT, out),
              where(path_, name));
}

void H5File::createExtendable(const std::string& name, DType dtype,
                              const std::vector<std::int64_t>& rowShape,
                              const DatasetOptions& options) {
  MS_REQUIRE(!exists(name), core::IoError, "'{}': dataset '{}' already exists", path_, name);
  std::vector<hsize_t> dims{0}, maxDims{H5S_UNLIMITED},
      chunk{static_cast<hsize_t>(std::max<std::int64_t>(1, options.chunkRows))};
  for (auto d : rowShape) {
    dims.push_back(static_cast<hsize_t>(d));
    maxDims.push_back(static_cast<hsize_t>(d));
    chunk.push_back(static_cast<hsize_t>(d));
  }
  Handle space(
      MS_H5_CHECK(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), maxDims.data()),
                  where(path_, name)));
  Handle lcpl(MS_H5_CHECK(H5Pcreate(H5P_LINK_CREATE), path_));
  MS_H5_CHECK(H5Pset_create_intermediate_group(lcpl.get(), 1), path_);
  Handle dcpl(MS_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), path_));
  MS_H5_CHECK(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), path_);
  if (options.compression > 0) MS_H5_CHECK(H5Pset_deflate(dcpl.get(), options.compression), path_);
  Handle ds(MS_H5_CHECK(H5Dcreate2(id_, name.c_str(), nativeType(dtype), space.get(), lcpl.get(),
                                   dcpl.get(), H5P_DEFAULT),
                        where(path_, name)));
}

void H5File::append(const std::string& name, DType dtype, const void* data, std::int64_t rows) {
  if (rows == 0) return;
  const DatasetInfo di = info(name);
  Handle ds(MS_H5_CHECK(H5Dopen2(id_, name.c_str(), H5P_DEFAULT), where(path_, name)));
  std::vector<hsize_t> dims(di.shape.begin(), di.shape.end());
  const hsize_t old = dims[0];
  dims[0] += static_cast<hsize_t>(rows);
  MS_H5_CHECK(H5Dset_extent(ds.get(), dims.data()), where(path_, name));
  Handle fspace(MS_H5_CHECK(H5Dget_space(ds.get()), where(path_, name)));
  Handle mspace(
      selectRows(fspace.get(), dims, old, static_cast<hsize_t>(rows), where(path_, name)));
  MS_H5_CHECK(H5Dwrite(ds.get(), nativeType(dtype), mspace.get(), fspace.get(), H5P_DEFAULT, data),
              where(path_, name));
}

namespace {

// Opens `object` (group or dataset; "/" the file) for attribute access.
hid_t openObject(hid_t file, const std::string& path, const std::string& object) {
  return MS_H5_CHECK(H5Oopen(file, object.empty() ? "/" : object.c_str(), H5P_DEFAULT),
                     where(path, object));
}

void writeAttr(hid_t file, const std::string& path, const std::string& object,
               const std::string& key, hid_t type, hid_t space, const void* data) {
  Handle obj(openObject(file, path, object));
  if (H5Aexists(obj.get(), key.c_str()) > 0) {
    MS_H5_CHECK(H5Adelete(obj.get(), key.c_str()), where(path, object + "@" + key));
  }
  Handle attr(MS_H5_CHECK(H5Acreate2(obj.get(), key.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT),
                          where(path, object + "@" + key)));
  MS_H5_CHECK(H5Awrite(attr.get(), type, data), where(path, object + "@" + key));
}

hid_t variableString() {
  const hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

}  // namespace

void H5File::setAttr(const std::string& object, const std::string& key, const std::string& value) {
  Handle type(variableString());
  Handle space(MS_H5_CHECK(H5Screate(H5S_SCALAR), path_));
  const char* p = value.c_str();
  writeAttr(id_, path_, object, key, type.get(), space.get(), &p);
}

void H5File::setAttr(const std::string& object, const std::string& key, const char* value) {
  setAttr(object, key, std::string(value));
}

void H5File::setAttr(const std::string& object, const std::string& key, std::int64_t value) {
  Handle space(MS_H5_CHECK(H5Screate(H5S_SCALAR), path_));
  writeAttr(id_, path_, object, key, H5T_NATIVE_INT64, space.get(), &value);
}

void H5File::setAttr(const std::string& object, const std::string& key, double value) {
  Handle space(MS_H5_CHECK(H5Screate(H5S_SCALAR), path_));
  writeAttr(id_, path_, object, key, H5T_NATIVE_DOUBLE, space.get(), &value);
}

void H5File::setAttr(const std::string& object, const std::string& key,
                     const std::vector<std::string>& value) {
  Handle type(variableString());
  const hsize_t n = value.size();
  Handle space(MS_H5_CHECK(H5Screate_simple(1, &n, nullptr), path_));
  std::vector<const char*> ptrs;
  for (const auto& s : value) ptrs.push_back(s.c_str());
  writeAttr(id_, path_, object, key, type.get(), space.get(), ptrs.data());
}

void H5File::setAttr(const std::string& object, const std::string& key,
                     const std::vector<double>& value) {
  const hsize_t n = value.size();
  Handle space(MS_H5_CHECK(H5Screate_simple(1, &n, nullptr), path_));
  writeAttr(id_, path_, object, key, H5T_NATIVE_DOUBLE, space.get(), value.data());
}

bool H5File::hasAttr(const std::string& object, const std::string& key) const {
  if (!exists(object)) return false;
  Handle obj(openObject(id_, path_, object));
  return MS_H5_CHECK(H5Aexists(obj.get(), key.c_str()), where(path_, object)) > 0;
}

namespace {

struct OpenAttr {
  Handle obj;
  Handle attr;
  Handle type;
  Handle space;
  hssize_t points = 0;
};

std::unique_ptr<OpenAttr> openAttr(hid_t file, const std::string& path, const std::string& object,
                                   const std::string& key) {
  auto a = std::make_unique<OpenAttr>();
  a->obj.reset(openObject(file, path, object));
  if (H5Aexists(a->obj.get(), key.c_str()) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    MS_THROW(core::IoError, "'{}': missing attribute '{}' on '{}'", path, key, object);
  }
  const std::string w = where(path, object + "@" + key);
  a->attr.reset(MS_H5_CHECK(H5Aopen(a->obj.get(), key.c_str(), H5P_DEFAULT), w));
  a->type.reset(MS_H5_CHECK(H5Aget_type(a->attr.get()), w));
  a->space.reset(MS_H5_CHECK(H5Aget_space(a->attr.get()), w));
  a->points = H5Sget_simple_extent_npoints(a->space.get());
  return a;
}

std::vector<std::string> readStrings(OpenAttr& a, const std::string& w) {
  MS_REQUIRE(H5Tget_class(a.type.get()) == H5T_STRING, core::IoError, "{}: not a string", w);
  const auto n = static_cast<std::size_t>(a.points);
  std::vector<std::string> out;
  if (H5Tis_variable_str(a.type.get()) > 0) {
    std::vector<char*> ptrs(n, nullptr);
    Handle mem(variableString());
    MS_H5_CHECK(H5Aread(a.attr.get(), mem.get(), ptrs.data()), w);
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(mem.get(), a.space.get(), H5P_DEFAULT, ptrs.data());
  } else {
    const std::size_t size = H5Tget_size(a.type.get());
    std::vector<char> buf(n * size);
    MS_H5_CHECK(H5Aread(a.attr.get(), a.type.get(), buf.data()), w);
    for (std::size_t i = 0; i < n; ++i) {
      const char* p = buf.data() + i * size;
      out.emplace_back(p, strnlen(p, size));
    }
  }
  return out;
}

}  // namespace

std::string H5File::attrString(const std::string& object, const std::string& key) const {
  auto a = openAttr(id_, path_, object, key);
  const auto v = readStrings(*a, where(path_, object + "@" + key));
  MS_REQUIRE(v.size() == 1, core::IoError, "{}: attribute '{}' is not a single string",
             where(path_, object), key);
  return v[0];
}

std::vector<std::string> H5File::attrStrings(const std::string& object,
                                             const std::string& key) const {
  auto a = openAttr(id_, path_, object, key);
  return readStrings(*a, where(path_, object + "@" + key));
}

std::int64_t H5File::attrInt(const std::string& object, const std::string& key) const {
  auto a = openAttr(id_, path_, object, key);
  MS_REQUIRE(a->points == 1 && H5Tget_class(a->type.get()) == H5T_INTEGER, core::IoError,
             "{}: attribute '{}' is not one integer", where(path_, object), key);
  std::int64_t v = 0;
  MS_H5_CHECK(H5Aread(a->attr.get(), H5T_NATIVE_INT64, &v), where(path_, object + "@" + key));
  return v;
}

double H5File::attrDouble(const std::string& object, const std::string& key) const {
  auto a = openAttr(id_, path_, object, key);
  const H5T_class_t cls = H5Tget_class(a->type.get());
  MS_REQUIRE(a->points == 1 && (cls == H5T_FLOAT || cls == H5T_INTEGER), core::IoError,
             "{}: attribute '{}' is not one number", where(path_, object), key);
  double v = 0;
  MS_H5_CHECK(H5Aread(a->attr.get(), H5T_NATIVE_DOUBLE, &v), where(path_, object + "@" + key));
  return v;
}

std::vector<double> H5File::attrDoubles(const std::string& object, const std::string& key) const {
  auto a = openAttr(id_, path_, object, key);
  const H5T_class_t cls = H5Tget_class(a->type.get());
  MS_REQUIRE(cls == H5T_FLOAT || cls == H5T_INTEGER, core::IoError,
             "{}: attribute '{}' is not numeric", where(path_, object), key);
  std::vector<double> v(static_cast<std::size_t>(a->points));
  if (!v.empty()) {
    MS_H5_CHECK(H5Aread(a->attr.get(), H5T_NATIVE_DOUBLE, v.data()),
                where(path_, object + "@" + key));
  }
  return v;
}

AtomicOutput::AtomicOutput(std::string finalPath)
    : finalPath_(std::move(finalPath)),
      tempPath_(fmt::format("{}.tmp.{}", finalPath_, static_cast<long>(::getpid()))) {
  std::error_code ec;
  std::filesystem::remove(tempPath_, ec);
}

AtomicOutput::~AtomicOutput() {
  if (!committed_) {
    std::error_code ec;
    std::filesystem::remove(tempPath_, ec);
  }
}

void AtomicOutput::commit() {
  MS_CHECK(!committed_, "'{}' committed twice", finalPath_);
  // fsync before rename: after a crash the final name holds either the old or the complete new
  // file, never a partial one.
  const int fd = ::open(tempPath_.c_str(), O_RDONLY);
  MS_REQUIRE(fd >= 0, core::IoError, "cannot open '{}' to finish it: {}", tempPath_,
             std::strerror(errno));
  ::fsync(fd);
  ::close(fd);
  if (std::rename(tempPath_.c_str(), finalPath_.c_str()) != 0) {
    MS_THROW(core::IoError, "cannot rename '{}' to '{}': {}", tempPath_, finalPath_,
             std::strerror(errno));
  }
  committed_ = true;
}

}  // namespace metasemi::io
