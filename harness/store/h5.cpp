#include "store/h5.h"

#if __has_include(<H5FDdevelop.h>)
#include <H5FDdevelop.h>  // the VFD developer API moved here in HDF5 1.13
#endif

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>

#include "common/error.h"

namespace profdit::store::h5 {

Handle::Handle(Handle&& other) noexcept : id_(other.id_), closer_(other.closer_) { other.id_ = H5I_INVALID_HID; }

Handle& Handle::operator=(Handle&& other) noexcept {
    if (this != &other) {
        close();
        id_     = std::exchange(other.id_, H5I_INVALID_HID);
        closer_ = other.closer_;
    }
    return *this;
}

herr_t Handle::close() {
    herr_t status = 0;
    if (id_ >= 0 && closer_) status = closer_(id_);
    id_ = H5I_INVALID_HID;
    return status;
}

Fd& Fd::operator=(Fd&& other) noexcept {
    if (this != &other) {
        reset();
        fd_ = other.release();
    }
    return *this;
}

int Fd::release() { return std::exchange(fd_, -1); }

void Fd::reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

QuietErrors::QuietErrors() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

QuietErrors::~QuietErrors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }

std::string journal_path(const std::string& path) { return path + ".journal"; }

namespace {

// " (No space left on device: disk full?); ..." for the errno of a failed write.
std::string write_failure(int e) {
    const bool space = e == ENOSPC || e == EFBIG || e == EDQUOT;
    return " (" + std::string(std::strerror(e)) + (space ? ": disk full?" : "") +
           "); the file is left as it was before this write: make room, then continue with --resume";
}

[[noreturn]] void fail(const File& f, const std::string& obj, const std::string& what) {
    if (f.write_error()) throw WriteError(f.path() + ": " + obj + ": " + what + write_failure(f.write_error()));
    throw std::runtime_error(f.path() + ": " + obj + ": " + what);
}

[[noreturn]] void bad_file(const File& f, const std::string& obj, const std::string& what) {
    input_error(f.path() + ": " + obj + ": " + what);
}

std::string errno_text() { return std::strerror(errno); }

// ---- POSIX I/O ----

bool write_all(int fd, const void* data, size_t size) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t n = ::write(fd, p, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        size -= size_t(n);
    }
    return true;
}

bool pwrite_all(int fd, const void* data, size_t size, uint64_t offset) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t n = ::pwrite(fd, p, size, off_t(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        size -= size_t(n);
        offset += uint64_t(n);
    }
    return true;
}

// Reads [offset, offset+size); bytes past the end of the file read as zeros.
bool pread_full(int fd, void* data, size_t size, uint64_t offset) {
    char* p = static_cast<char*>(data);
    while (size > 0) {
        const ssize_t n = ::pread(fd, p, size, off_t(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        if (n == 0) {
            std::memset(p, 0, size);
            return true;
        }
        p += n;
        size -= size_t(n);
        offset += uint64_t(n);
    }
    return true;
}

// ---- The undo-journal virtual file driver ----
// A POSIX driver like HDF5's sec2 that, in read-write mode, appends the old content of every range of the
// original file to PATH.journal before overwriting it. The journal starts with a magic and the original size,
// then holds records {addr, size, bytes}; a record cut short by a kill is ignored (its overwrite never started).
// After the first failed write (disk full) nothing more reaches the disk and later writes report success: the
// file is rolled back from its journal anyway, and HDF5 must be able to close it (a failed close leaves HDF5
// with a half-closed file that it closes again, and crashes on, at exit). The failure is reported through
// File::write_error, whose address the driver gets as its driver info.

constexpr char     kJournalMagic[8] = {'P', 'D', 'J', 'R', 'N', 'L', '0', '1'};
constexpr uint64_t kCopyBlock       = uint64_t(1) << 20;

struct JournalFile {
    H5FD_t   pub;  // first: HDF5 hands &pub back to the callbacks
    int      fd;
    int      journal;  // -1 when read-only
    haddr_t  eoa;
    haddr_t  eof;
    uint64_t original_size;
    int*     write_error;  // File::write_error_
};
static_assert(std::is_standard_layout<JournalFile>::value, "HDF5 casts H5FD_t* to the driver struct");

JournalFile*       as_journal(H5FD_t* f) { return reinterpret_cast<JournalFile*>(f); }
const JournalFile* as_journal(const H5FD_t* f) { return reinterpret_cast<const JournalFile*>(f); }

bool save_original(const JournalFile* f, uint64_t addr, uint64_t size) {
    try {
        const uint64_t header[2] = {addr, size};
        if (!write_all(f->journal, header, sizeof header)) return false;
        std::vector<char> block(size_t(std::min(size, kCopyBlock)));
        for (uint64_t done = 0; done < size;) {
            const size_t n = size_t(std::min<uint64_t>(block.size(), size - done));
            if (!pread_full(f->fd, block.data(), n, addr + done) || !write_all(f->journal, block.data(), n))
                return false;
            done += n;
        }
        return true;
    } catch (...) {
        return false;
    }
}

H5FD_t* journal_open(const char* name, unsigned flags, hid_t fapl, haddr_t /*maxaddr*/) {
    try {
        const auto* info = static_cast<int* const*>(H5Pget_driver_info(fapl));
        if (!info || !*info) return nullptr;
        const bool writable = (flags & H5F_ACC_RDWR) != 0;
        int        oflags   = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC;
        if (flags & H5F_ACC_CREAT) oflags |= O_CREAT;
        if (flags & H5F_ACC_TRUNC) oflags |= O_TRUNC;
        if (flags & H5F_ACC_EXCL) oflags |= O_EXCL;
        Fd fd(::open(name, oflags, 0666));
        if (!fd.valid()) return nullptr;
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) return nullptr;

        Fd journal;
        if (writable) {
            const std::string jpath = journal_path(name);
            journal = Fd(::open(jpath.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
            if (!journal.valid()) return nullptr;
            char           header[16];
            const uint64_t size = uint64_t(st.st_size);
            std::memcpy(header, kJournalMagic, 8);
            std::memcpy(header + 8, &size, 8);
            if (!write_all(journal.get(), header, sizeof header)) {
                ::unlink(jpath.c_str());
                return nullptr;
            }
        }
        auto* f          = new JournalFile{};
        f->fd            = fd.release();
        f->journal       = journal.release();
        f->eof           = haddr_t(st.st_size);
        f->original_size = uint64_t(st.st_size);
        f->write_error   = *info;
        return &f->pub;
    } catch (...) {
        return nullptr;
    }
}

herr_t journal_close(H5FD_t* file) {
    JournalFile* f  = as_journal(file);
    bool         ok = ::close(f->fd) == 0;
    if (f->journal >= 0) ok = ::close(f->journal) == 0 && ok;
    delete f;
    return ok ? 0 : -1;
}

herr_t journal_query(const H5FD_t*, unsigned long* flags) {
    if (flags)
        *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
                 H5FD_FEAT_AGGREGATE_SMALLDATA;
    return 0;
}

haddr_t journal_get_eoa(const H5FD_t* file, H5FD_mem_t) { return as_journal(file)->eoa; }

herr_t journal_set_eoa(H5FD_t* file, H5FD_mem_t, haddr_t addr) {
    as_journal(file)->eoa = addr;
    return 0;
}

haddr_t journal_get_eof(const H5FD_t* file, H5FD_mem_t) { return as_journal(file)->eof; }

herr_t journal_read(H5FD_t* file, H5FD_mem_t, hid_t, haddr_t addr, size_t size, void* buffer) {
    if (addr == HADDR_UNDEF) return -1;
    return pread_full(as_journal(file)->fd, buffer, size, addr) ? 0 : -1;
}

herr_t write_failed(JournalFile* f) {
    *f->write_error = errno ? errno : EIO;
    return -1;
}

herr_t journal_write(H5FD_t* file, H5FD_mem_t, hid_t, haddr_t addr, size_t size, const void* buffer) {
    JournalFile* f = as_journal(file);
    if (f->journal < 0 || addr == HADDR_UNDEF) return -1;
    if (*f->write_error) return 0;
    if (addr < f->original_size && !save_original(f, addr, std::min<uint64_t>(size, f->original_size - addr)))
        return write_failed(f);
    if (!pwrite_all(f->fd, buffer, size, addr)) return write_failed(f);
    f->eof = std::max<haddr_t>(f->eof, addr + size);
    return 0;
}

herr_t journal_truncate(H5FD_t* file, hid_t, hbool_t) {
    JournalFile* f = as_journal(file);
    if (f->eoa == f->eof || f->journal < 0 || *f->write_error) return 0;
    if (f->eoa < f->eof && f->eoa < f->original_size &&
        !save_original(f, f->eoa, std::min<uint64_t>(f->eof, f->original_size) - f->eoa))
        return write_failed(f);
    if (::ftruncate(f->fd, off_t(f->eoa)) != 0) return write_failed(f);
    f->eof = f->eoa;
    return 0;
}

H5FD_class_t journal_class() {
    H5FD_class_t c;
    std::memset(&c, 0, sizeof c);
#ifdef H5FD_CLASS_VERSION
    c.version = H5FD_CLASS_VERSION;
    c.value   = static_cast<H5FD_class_value_t>(350);  // 256-511: drivers outside the HDF5 library
#endif
    c.name         = "profdit_journal";
    c.fapl_size    = sizeof(int*);  // the driver info: File::write_error_'s address, copied as bytes
    c.maxaddr      = (haddr_t(1) << 62) - 1;
    c.fc_degree    = H5F_CLOSE_WEAK;
    c.open         = journal_open;
    c.close        = journal_close;
    c.query        = journal_query;
    c.get_eoa      = journal_get_eoa;
    c.set_eoa      = journal_set_eoa;
    c.get_eof      = journal_get_eof;
    c.read         = journal_read;
    c.write        = journal_write;
    c.truncate     = journal_truncate;
    const H5FD_mem_t map[H5FD_MEM_NTYPES] = H5FD_FLMAP_DICHOTOMY;
    std::copy(std::begin(map), std::end(map), std::begin(c.fl_map));
    return c;
}

// Restores PATH from PATH.journal (if there is one) and deletes the journal. The caller holds the exclusive lock.
void rollback(const std::string& path) {
    const std::string jpath = journal_path(path);
    Fd                journal(::open(jpath.c_str(), O_RDONLY | O_CLOEXEC));
    if (!journal.valid()) {
        if (errno == ENOENT) return;
        input_error(path + ": cannot read the journal of an interrupted write, " + jpath + " (" + errno_text() + ")");
    }
    Fd data(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!data.valid()) {
        if (errno == ENOENT) {
            ::unlink(jpath.c_str());
            return;
        }
        input_error(path + ": cannot repair an interrupted write (" + errno_text() + "); the journal is " + jpath);
    }
    struct stat st {};
    if (::fstat(journal.get(), &st) != 0) input_error(jpath + ": cannot stat (" + errno_text() + ")");
    const uint64_t journal_size = uint64_t(st.st_size);

    char header[16];
    if (journal_size < sizeof header || !pread_full(journal.get(), header, sizeof header, 0)) {
        ::unlink(jpath.c_str());  // killed while opening: nothing was overwritten yet
        return;
    }
    if (std::memcmp(header, kJournalMagic, 8) != 0)
        input_error(jpath + " is not a profdit journal; move it away to open " + path);
    uint64_t original_size = 0;
    std::memcpy(&original_size, header + 8, 8);

    struct Entry {
        uint64_t at, addr, size;
    };
    std::vector<Entry> entries;
    for (uint64_t at = sizeof header; at + 16 <= journal_size;) {
        uint64_t rec[2];
        if (!pread_full(journal.get(), rec, sizeof rec, at)) break;
        if (rec[1] > journal_size - at - 16) break;  // cut short by the kill
        entries.push_back({at + 16, rec[0], rec[1]});
        at += 16 + rec[1];
    }
    std::vector<char> block;
    for (auto e = entries.rbegin(); e != entries.rend(); ++e) {
        for (uint64_t done = 0; done < e->size;) {
            const size_t n = size_t(std::min(kCopyBlock, e->size - done));
            block.resize(n);
            if (!pread_full(journal.get(), block.data(), n, e->at + done) ||
                !pwrite_all(data.get(), block.data(), n, e->addr + done))
                input_error(path + ": cannot repair an interrupted write (" + errno_text() + ")");
            done += n;
        }
    }
    if (::ftruncate(data.get(), off_t(original_size)) != 0 || ::fsync(data.get()) != 0)
        input_error(path + ": cannot repair an interrupted write (" + errno_text() + ")");
    ::unlink(jpath.c_str());
}

void lock(int fd, int operation, const std::string& path) {
    using clock         = std::chrono::steady_clock;
    const auto deadline = clock::now() + std::chrono::seconds(60);
    while (::flock(fd, operation | LOCK_NB) != 0) {
        if (errno == EINTR) continue;
        if (errno == ENOLCK || errno == ENOSYS || errno == EOPNOTSUPP) return;  // no locks on this file system
        if (errno != EWOULDBLOCK) throw std::runtime_error(path + ": cannot lock (" + errno_text() + ")");
        if (clock::now() > deadline)
            input_error(path + " is locked by another process (open in h5py, or written by another profdit?)");
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

Handle intermediate_lcpl() {
    Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
    if (!lcpl.valid() || H5Pset_create_intermediate_group(lcpl.get(), 1) < 0)
        throw std::runtime_error("HDF5: cannot make a link-creation property list");
    return lcpl;
}

}  // namespace

File::File(std::string path, Mode mode) : path_(std::move(path)), mode_(mode) {
    if (mode_ == Mode::create) {
        ::unlink(journal_path(path_).c_str());
    } else {
        lock_ = Fd(::open(path_.c_str(), (mode_ == Mode::write ? O_RDWR : O_RDONLY) | O_CLOEXEC));
        if (!lock_.valid()) {
            if (errno == ENOENT) input_error(path_ + " does not exist");
            input_error(path_ + ": cannot open (" + errno_text() + ")");
        }
        if (mode_ == Mode::write) {
            lock(lock_.get(), LOCK_EX, path_);
            rollback(path_);
        } else {
            lock(lock_.get(), LOCK_SH, path_);
            if (::access(journal_path(path_).c_str(), F_OK) == 0) {
                lock(lock_.get(), LOCK_EX, path_);
                rollback(path_);
                lock(lock_.get(), LOCK_SH, path_);
            }
        }
    }

    const H5FD_class_t cls = journal_class();
    driver_                = Handle(H5FDregister(&cls), H5FDunregister);
    Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    int* const write_error = &write_error_;
    if (!driver_.valid() || !fapl.valid() || H5Pset_driver(fapl.get(), driver_.get(), &write_error) < 0 ||
        H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_V18) < 0 ||
        H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG) < 0)
        throw std::runtime_error(path_ + ": cannot set up the HDF5 file driver");

    hid_t id = H5I_INVALID_HID;
    switch (mode_) {
        case Mode::read: id = H5Fopen(path_.c_str(), H5F_ACC_RDONLY, fapl.get()); break;
        case Mode::write: id = H5Fopen(path_.c_str(), H5F_ACC_RDWR, fapl.get()); break;
        case Mode::create: id = H5Fcreate(path_.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, fapl.get()); break;
    }
    if (id < 0) {
        if (mode_ == Mode::write) rollback(path_);
        if (mode_ == Mode::create) {
            ::unlink(journal_path(path_).c_str());
            input_error(path_ + ": cannot create the file (" + errno_text() + ")");
        }
        input_error(path_ + " is not an HDF5 file, or is damaged");
    }
    file_ = Handle(id, H5Fclose);
}

File::~File() {
    if (committed_) return;
    file_.close();
    driver_.close();
    try {
        if (mode_ == Mode::write) rollback(path_);
        if (mode_ == Mode::create) {
            ::unlink(path_.c_str());
            ::unlink(journal_path(path_).c_str());
        }
    } catch (...) {
        // the journal stays; the next open rolls the file back
    }
}

void File::commit() {
    if (mode_ == Mode::read) return;
    const bool flushed = H5Fflush(file_.get(), H5F_SCOPE_LOCAL) >= 0;
    const bool closed  = file_.close() >= 0;
    if (write_error_) throw WriteError(path_ + ": cannot write the file" + write_failure(write_error_));
    if (!flushed || !closed) throw std::runtime_error(path_ + ": HDF5 could not flush the file; it is left as it was before this write");
    driver_.close();
    if (::unlink(journal_path(path_).c_str()) != 0 && errno != ENOENT)
        throw std::runtime_error(path_ + ": cannot remove " + journal_path(path_) + " (" + errno_text() + ")");
    committed_ = true;
    lock_.reset();
}

std::string absolute(const std::string& path) {
    std::string p = (path.empty() || path[0] != '/') ? "/" + path : path;
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    return p;
}

bool exists(const File& f, const std::string& path) {
    if (path == "/") return true;
    for (size_t end = path.find('/', 1);; end = path.find('/', end + 1)) {
        const std::string prefix = path.substr(0, end);
        if (H5Lexists(f.id(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
        if (end == std::string::npos) return true;
    }
}

void create_group(const File& f, const std::string& path) {
    Handle lcpl = intermediate_lcpl();
    Handle g(H5Gcreate2(f.id(), path.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    if (!g.valid()) fail(f, path, "cannot create group");
}

void remove(const File& f, const std::string& path) {
    if (H5Ldelete(f.id(), path.c_str(), H5P_DEFAULT) < 0) fail(f, path, "cannot delete");
}

std::vector<std::string> children(const File& f, const std::string& group, H5I_type_t type) {
    std::vector<std::string> names;
    if (!exists(f, group)) return names;
    Handle g(H5Gopen2(f.id(), group.c_str(), H5P_DEFAULT), H5Gclose);
    if (!g.valid()) bad_file(f, group, "is not a group");
    H5G_info_t info;
    if (H5Gget_info(g.get(), &info) < 0) bad_file(f, group, "cannot list the group");
    for (hsize_t i = 0; i < info.nlinks; ++i) {
        const ssize_t size = H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
        if (size < 0) bad_file(f, group, "cannot list the group");
        std::vector<char> name(size_t(size) + 1, '\0');
        H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
        Handle child(H5Oopen(g.get(), name.data(), H5P_DEFAULT), H5Oclose);
        if (child.valid() && H5Iget_type(child.get()) == type) names.emplace_back(name.data());
    }
    std::sort(names.begin(), names.end());
    return names;
}

void copy(const File& from, const std::string& src, const File& to, const std::string& dst) {
    Handle lcpl = intermediate_lcpl();
    if (H5Ocopy(from.id(), src.c_str(), to.id(), dst.c_str(), H5P_DEFAULT, lcpl.get()) < 0)
        fail(to, dst, "cannot copy " + from.path() + ":" + src);
}

// ---- attributes ----

namespace {

void put_attr(const File& f, const std::string& obj, const std::string& name, hid_t type, hid_t space,
              const void* data) {
    const htri_t present = H5Aexists_by_name(f.id(), obj.c_str(), name.c_str(), H5P_DEFAULT);
    if (present < 0) fail(f, obj, "no such object for attribute '" + name + "'");
    if (present > 0 && H5Adelete_by_name(f.id(), obj.c_str(), name.c_str(), H5P_DEFAULT) < 0)
        fail(f, obj, "cannot replace attribute '" + name + "'");
    Handle attr(H5Acreate_by_name(f.id(), obj.c_str(), name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT,
                                  H5P_DEFAULT),
                H5Aclose);
    if (!attr.valid() || H5Awrite(attr.get(), type, data) < 0 || attr.close() < 0)
        fail(f, obj, "cannot write attribute '" + name + "'");
}

Handle string_type(size_t size, H5T_cset_t cset) {
    Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
    if (!type.valid() || H5Tset_size(type.get(), std::max<size_t>(size, 1)) < 0 ||
        H5Tset_strpad(type.get(), H5T_STR_NULLPAD) < 0 || H5Tset_cset(type.get(), cset) < 0)
        throw std::runtime_error("HDF5: cannot make a string type");
    return type;
}

Handle open_attr(const File& f, const std::string& obj, const std::string& name) {
    if (!exists(f, obj)) bad_file(f, obj, "no such object");
    if (H5Aexists_by_name(f.id(), obj.c_str(), name.c_str(), H5P_DEFAULT) <= 0)
        bad_file(f, obj, "no attribute '" + name + "'");
    Handle attr(H5Aopen_by_name(f.id(), obj.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (!attr.valid()) bad_file(f, obj, "cannot open attribute '" + name + "'");
    return attr;
}

template <class T>
T read_number(const File& f, const std::string& obj, const std::string& name, hid_t mem_type) {
    Handle attr = open_attr(f, obj, name);
    Handle type(H5Aget_type(attr.get()), H5Tclose);
    Handle space(H5Aget_space(attr.get()), H5Sclose);
    const H5T_class_t cls = H5Tget_class(type.get());
    if ((cls != H5T_INTEGER && cls != H5T_FLOAT) || H5Sget_simple_extent_npoints(space.get()) != 1)
        bad_file(f, obj, "attribute '" + name + "' is not a number");
    T value{};
    if (H5Aread(attr.get(), mem_type, &value) < 0) bad_file(f, obj, "cannot read attribute '" + name + "'");
    return value;
}

}  // namespace

void write_attr(const File& f, const std::string& obj, const std::string& name, const std::string& value) {
    Handle     type = string_type(value.size(), H5T_CSET_UTF8);
    Handle     space(H5Screate(H5S_SCALAR), H5Sclose);
    const char empty[1] = {0};
    put_attr(f, obj, name, type.get(), space.get(), value.empty() ? empty : value.data());
}

void write_attr(const File& f, const std::string& obj, const std::string& name, double value) {
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    Handle type(H5Tcopy(H5T_NATIVE_DOUBLE), H5Tclose);
    put_attr(f, obj, name, type.get(), space.get(), &value);
}

void write_attr(const File& f, const std::string& obj, const std::string& name, int64_t value) {
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    Handle type(H5Tcopy(H5T_NATIVE_INT64), H5Tclose);
    put_attr(f, obj, name, type.get(), space.get(), &value);
}

void write_attr(const File& f, const std::string& obj, const std::string& name,
                const std::vector<std::string>& values) {
    size_t width = 1;
    for (const auto& v : values) width = std::max(width, v.size());
    std::string buffer(values.size() * width, '\0');
    for (size_t i = 0; i < values.size(); ++i) values[i].copy(&buffer[i * width], values[i].size());
    Handle        type = string_type(width, H5T_CSET_UTF8);
    const hsize_t n    = values.size();
    Handle        space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    put_attr(f, obj, name, type.get(), space.get(), buffer.data());
}

bool has_attr(const File& f, const std::string& obj, const std::string& name) {
    return exists(f, obj) && H5Aexists_by_name(f.id(), obj.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

std::vector<std::string> read_str_list_attr(const File& f, const std::string& obj, const std::string& name) {
    Handle attr = open_attr(f, obj, name);
    Handle type(H5Aget_type(attr.get()), H5Tclose);
    Handle space(H5Aget_space(attr.get()), H5Sclose);
    if (H5Tget_class(type.get()) != H5T_STRING) bad_file(f, obj, "attribute '" + name + "' is not a string");
    const hssize_t n = H5Sget_simple_extent_npoints(space.get());
    if (n < 0) bad_file(f, obj, "cannot read attribute '" + name + "'");
    const H5T_cset_t         cset = H5Tget_cset(type.get());
    std::vector<std::string> values;
    if (H5Tis_variable_str(type.get()) > 0) {
        Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
        H5Tset_size(mem.get(), H5T_VARIABLE);
        H5Tset_cset(mem.get(), cset);
        std::vector<char*> ptrs(size_t(n), nullptr);
        if (H5Aread(attr.get(), mem.get(), ptrs.data()) < 0) bad_file(f, obj, "cannot read attribute '" + name + "'");
        for (const char* p : ptrs) values.emplace_back(p ? p : "");
#if H5_VERSION_GE(1, 12, 0)
        H5Treclaim(mem.get(), space.get(), H5P_DEFAULT, ptrs.data());
#else
        H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, ptrs.data());
#endif
    } else {
        const size_t width = H5Tget_size(type.get());
        Handle       mem   = string_type(width, cset);
        std::string  buffer(size_t(n) * width, '\0');
        if (H5Aread(attr.get(), mem.get(), buffer.data()) < 0)
            bad_file(f, obj, "cannot read attribute '" + name + "'");
        for (size_t i = 0; i < size_t(n); ++i) {
            const std::string v = buffer.substr(i * width, width);
            values.push_back(v.substr(0, v.find('\0')));
        }
    }
    return values;
}

std::string read_str_attr(const File& f, const std::string& obj, const std::string& name) {
    auto values = read_str_list_attr(f, obj, name);
    if (values.size() != 1) bad_file(f, obj, "attribute '" + name + "' is not a single string");
    return values[0];
}

double read_num_attr(const File& f, const std::string& obj, const std::string& name) {
    return read_number<double>(f, obj, name, H5T_NATIVE_DOUBLE);
}

int64_t read_int_attr(const File& f, const std::string& obj, const std::string& name) {
    return read_number<int64_t>(f, obj, name, H5T_NATIVE_INT64);
}

// ---- tensors ----

namespace {

struct Types {
    hid_t file = H5I_INVALID_HID, mem = H5I_INVALID_HID;
};

Types types_of(c10::ScalarType dtype) {
    switch (dtype) {
        case torch::kFloat32: return {H5T_IEEE_F32LE, H5T_NATIVE_FLOAT};
        case torch::kFloat64: return {H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE};
        case torch::kInt64: return {H5T_STD_I64LE, H5T_NATIVE_INT64};
        case torch::kInt32: return {H5T_STD_I32LE, H5T_NATIVE_INT32};
        case torch::kInt16: return {H5T_STD_I16LE, H5T_NATIVE_INT16};
        case torch::kInt8: return {H5T_STD_I8LE, H5T_NATIVE_INT8};
        case torch::kUInt8: return {H5T_STD_U8LE, H5T_NATIVE_UINT8};
        default: return {};
    }
}

// The tensor dtype of an HDF5 type; Undefined when there is none.
c10::ScalarType dtype_of(hid_t type) {
    const size_t size = H5Tget_size(type);
    switch (H5Tget_class(type)) {
        case H5T_FLOAT:
            if (size == 4) return torch::kFloat32;
            if (size == 8) return torch::kFloat64;
            break;
        case H5T_INTEGER:
            if (H5Tget_sign(type) == H5T_SGN_NONE) return size == 1 ? torch::kUInt8 : c10::ScalarType::Undefined;
            if (size == 1) return torch::kInt8;
            if (size == 2) return torch::kInt16;
            if (size == 4) return torch::kInt32;
            if (size == 8) return torch::kInt64;
            break;
        default: break;
    }
    return c10::ScalarType::Undefined;
}

// One item of the leading dimension per chunk (a video frame for [F,H,W,3]), cut further to about 4 MiB.
std::vector<hsize_t> chunk_dims(std::vector<hsize_t> dims, size_t element_size) {
    constexpr hsize_t kTarget = hsize_t(4) << 20;
    auto bytes = [&] {
        hsize_t n = element_size;
        for (hsize_t d : dims) n *= d;
        return n;
    };
    if (dims.size() > 1) dims[0] = 1;
    for (size_t i = 1; i + 1 < dims.size() && bytes() > kTarget; ++i) dims[i] = 1;
    if (bytes() > kTarget) dims.back() = std::max<hsize_t>(1, dims.back() * kTarget / bytes());
    return dims;
}

}  // namespace

void write_tensor(const File& f, const std::string& path, const torch::Tensor& tensor, bool compress) {
    if (!tensor.defined()) fail(f, path, "undefined tensor");
    torch::Tensor t = tensor.detach().to(torch::kCPU);
    if (t.scalar_type() == torch::kBool) t = t.to(torch::kUInt8);
    t                 = t.contiguous();
    const Types types = types_of(t.scalar_type());
    if (types.file < 0) fail(f, path, std::string("cannot store dtype ") + c10::toString(t.scalar_type()));

    const std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
    Handle space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(int(dims.size()), dims.data(), nullptr),
                 H5Sclose);
    Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    if (!space.valid() || !dcpl.valid()) fail(f, path, "cannot describe dataset");
    if (compress && !dims.empty() && t.numel() > 0) {
        const auto chunk = chunk_dims(dims, size_t(t.element_size()));
        if (H5Pset_chunk(dcpl.get(), int(chunk.size()), chunk.data()) < 0 || H5Pset_deflate(dcpl.get(), 4) < 0)
            fail(f, path, "cannot set up compression");
    }
    Handle lcpl = intermediate_lcpl();
    Handle ds(H5Dcreate2(f.id(), path.c_str(), types.file, space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT),
              H5Dclose);
    if (!ds.valid()) fail(f, path, "cannot create dataset");
    if (t.numel() > 0 && H5Dwrite(ds.get(), types.mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) < 0)
        fail(f, path, "cannot write dataset");
    if (ds.close() < 0) fail(f, path, "cannot write dataset");
}

torch::Tensor read_tensor(const File& f, const std::string& path) {
    if (!exists(f, path)) bad_file(f, path, "no such dataset");
    Handle ds(H5Dopen2(f.id(), path.c_str(), H5P_DEFAULT), H5Dclose);
    if (!ds.valid()) bad_file(f, path, "is not a dataset");
    Handle                type(H5Dget_type(ds.get()), H5Tclose);
    Handle                space(H5Dget_space(ds.get()), H5Sclose);
    const c10::ScalarType dtype = dtype_of(type.get());
    if (dtype == c10::ScalarType::Undefined) bad_file(f, path, "dataset type has no tensor dtype");
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0) bad_file(f, path, "cannot read the dataset shape");
    std::vector<hsize_t> dims(size_t(rank), 0);
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    const std::vector<int64_t> shape(dims.begin(), dims.end());
    torch::Tensor              t = torch::empty(shape, torch::dtype(dtype));
    if (t.numel() > 0 && H5Dread(ds.get(), types_of(dtype).mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) < 0)
        bad_file(f, path, "cannot read dataset");
    return t;
}

}  // namespace profdit::store::h5
