#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "common/error.h"

// A thin RAII layer over the HDF5 C API. Object paths are absolute ("/runs/x/latency/step_ms"); every error
// names the file and the object: InputError for a bad or damaged user file, std::runtime_error otherwise.
namespace profdit::store::h5 {

// Owns one HDF5 identifier and releases it with the matching H5?close function.
class Handle {
  public:
    using Closer = herr_t (*)(hid_t);

    Handle() = default;
    Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
    ~Handle() { close(); }
    Handle(Handle&& other) noexcept;
    Handle& operator=(Handle&& other) noexcept;
    Handle(const Handle&)            = delete;
    Handle& operator=(const Handle&) = delete;

    hid_t  get() const { return id_; }
    bool   valid() const { return id_ >= 0; }
    herr_t close();  // releases now; returns the close function's status

  private:
    hid_t  id_     = H5I_INVALID_HID;
    Closer closer_ = nullptr;
};

// Owns a POSIX file descriptor.
class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(Fd&& other) noexcept : fd_(other.release()) {}
    Fd& operator=(Fd&& other) noexcept;
    Fd(const Fd&)            = delete;
    Fd& operator=(const Fd&) = delete;

    int  get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    int  release();
    void reset();

  private:
    int fd_ = -1;
};

// Turns off HDF5's automatic error-stack printing for its lifetime and restores the previous handler.
class QuietErrors {
  public:
    QuietErrors();
    ~QuietErrors();
    QuietErrors(const QuietErrors&)            = delete;
    QuietErrors& operator=(const QuietErrors&) = delete;

  private:
    H5E_auto2_t func_ = nullptr;
    void*       data_ = nullptr;
};

enum class Mode { read, write, create };

// PATH.journal: the undo journal of a write in progress (see File).
std::string journal_path(const std::string& path);

// An open HDF5 file.
//   read:   a shared lock; a journal left by a killed writer is rolled back first.
//   write:  an exclusive lock and an undo journal: every byte of the existing file is saved to the journal
//           before it is overwritten. commit() flushes, closes and drops the journal. Without commit()
//           (an exception) the destructor rolls the file back, and a writer killed at any moment leaves a
//           journal that the next open rolls back, so the file is always as of its last commit.
//   create: a new file that must not exist yet (a temporary path); deleted unless committed.
// The file could not be written (disk full, quota, I/O error). It is rolled back to its last commit when the
// File closes; like bad input, it is one line and exit 2 (DESIGN.md), and a sweep stops at it.
class WriteError : public InputError {
  public:
    using InputError::InputError;
};

class File {
  public:
    File(std::string path, Mode mode);
    ~File();
    File(const File&)            = delete;
    File& operator=(const File&) = delete;

    hid_t              id() const { return file_.get(); }
    const std::string& path() const { return path_; }
    void               commit();
    int                write_error() const { return write_error_; }  // errno of the first failed write, else 0

  private:
    QuietErrors quiet_;
    std::string path_;
    Mode        mode_;
    Fd          lock_;
    Handle      driver_;
    Handle      file_;
    bool        committed_   = false;
    int         write_error_ = 0;  // set by the file driver, which gets its address (File does not move)
};

// "runs/x/" -> "/runs/x".
std::string absolute(const std::string& path);

bool                     exists(const File& f, const std::string& path);
void                     create_group(const File& f, const std::string& path);  // with intermediate groups
void                     remove(const File& f, const std::string& path);
std::vector<std::string> children(const File& f, const std::string& group, H5I_type_t type);  // sorted names
void copy(const File& from, const std::string& src, const File& to, const std::string& dst);

// Attributes (an existing one is replaced). Strings are fixed-length UTF-8; reading also takes variable-length.
void                     write_attr(const File& f, const std::string& obj, const std::string& name, const std::string& value);
void                     write_attr(const File& f, const std::string& obj, const std::string& name, double value);
void                     write_attr(const File& f, const std::string& obj, const std::string& name, int64_t value);
void                     write_attr(const File& f, const std::string& obj, const std::string& name,
                                    const std::vector<std::string>& values);
bool                     has_attr(const File& f, const std::string& obj, const std::string& name);
std::string              read_str_attr(const File& f, const std::string& obj, const std::string& name);
std::vector<std::string> read_str_list_attr(const File& f, const std::string& obj, const std::string& name);
double                   read_num_attr(const File& f, const std::string& obj, const std::string& name);
int64_t                  read_int_attr(const File& f, const std::string& obj, const std::string& name);

// Datasets from tensors of dtype float32/float64/int8/int16/int32/int64/uint8 (bool is stored as uint8), any
// rank (rank 0 = HDF5 scalar). compress: chunked (one leading-dim item, at most ~4 MiB, per chunk) + deflate 4.
void          write_tensor(const File& f, const std::string& path, const torch::Tensor& tensor, bool compress);
torch::Tensor read_tensor(const File& f, const std::string& path);

}  // namespace profdit::store::h5
