#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/json_file.h"

namespace profdit::io {

namespace {

struct DtypeInfo {
    const char*     name;
    c10::ScalarType type;
};

const DtypeInfo kDtypes[] = {
    {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
    {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
    {"U8", torch::kUInt8},    {"BOOL", torch::kBool},
};

constexpr size_t kMaxHeader = size_t(100) << 20;

std::string supported_dtypes() {
    std::string s;
    for (const auto& d : kDtypes) s += std::string(s.empty() ? "" : ", ") + d.name;
    return s;
}

}  // namespace

const char* dtype_name(c10::ScalarType t) {
    for (const auto& d : kDtypes)
        if (d.type == t) return d.name;
    throw std::runtime_error(std::string("safetensors: no dtype name for ") + c10::toString(t));
}

c10::ScalarType dtype_from_name(const std::string& s, const std::string& context) {
    for (const auto& d : kDtypes)
        if (s == d.name) return d.type;
    input_error(context + ": unknown dtype '" + s + "' (supported: " + supported_dtypes() + ")");
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) input_error(path + ": cannot open safetensors file (" + std::strerror(errno) + ")");
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd_);
        fd_ = -1;
        input_error(path + ": not a regular file");
    }
    size_ = size_t(st.st_size);
    auto fail = [&](const std::string& why) {
        if (map_) ::munmap(map_, size_);
        ::close(fd_);
        map_ = nullptr;
        fd_  = -1;
        input_error(path + ": malformed safetensors file: " + why);
    };
    if (size_ < 8) fail("file is " + std::to_string(size_) + " bytes, shorter than the 8-byte header length");
    map_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (map_ == MAP_FAILED) {
        map_ = nullptr;
        fail(std::string("mmap failed (") + std::strerror(errno) + ")");
    }
    const auto* bytes = static_cast<const unsigned char*>(map_);
    uint64_t    n     = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
    if (n > kMaxHeader) fail("header length " + std::to_string(n) + " exceeds the 100 MiB limit");
    if (n > size_ - 8)
        fail("header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size_) +
             " bytes; truncated?)");
    data_start_          = 8 + size_t(n);
    const size_t data_sz = size_ - data_start_;

    nlohmann::json header;
    try {
        header = nlohmann::json::parse(bytes + 8, bytes + 8 + n);
    } catch (const nlohmann::json::exception& e) {
        fail(std::string("header is not valid JSON (") + e.what() + ")");
    }
    if (!header.is_object()) fail("header is not a JSON object");

    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string& key = it.key();
        const auto&        v   = it.value();
        if (key == "__metadata__") {
            if (!v.is_object()) fail("__metadata__ is not an object");
            for (auto m = v.begin(); m != v.end(); ++m) {
                if (!m.value().is_string()) fail("__metadata__ value '" + m.key() + "' is not a string");
                metadata_[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        const std::string where = "tensor '" + key + "'";
        if (!v.is_object()) fail(where + " is not an object");
        if (!v.contains("dtype") || !v["dtype"].is_string()) fail(where + " has no string 'dtype'");
        if (!v.contains("shape") || !v["shape"].is_array()) fail(where + " has no 'shape' array");
        if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
            fail(where + " has no 'data_offsets' pair");
        for (auto m = v.begin(); m != v.end(); ++m)
            if (m.key() != "dtype" && m.key() != "shape" && m.key() != "data_offsets")
                fail(where + " has unknown key '" + m.key() + "'");

        TensorEntry e;
        e.name  = key;
        e.dtype = dtype_from_name(v["dtype"].get<std::string>(), path + ": " + where);
        uint64_t numel = 1;
        for (const auto& d : v["shape"]) {
            if (!d.is_number_unsigned()) fail(where + " has a shape entry that is not a non-negative integer");
            const uint64_t dim = d.get<uint64_t>();
            if (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / dim) fail(where + " shape overflows");
            numel *= dim;
            e.shape.push_back(int64_t(dim));
        }
        const auto& off = v["data_offsets"];
        if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
            fail(where + " data_offsets are not non-negative integers");
        e.begin = off[0].get<uint64_t>();
        e.end   = off[1].get<uint64_t>();
        if (e.begin > e.end) fail(where + " data_offsets begin " + std::to_string(e.begin) + " > end " + std::to_string(e.end));
        if (e.end > data_sz)
            fail(where + " data_offsets end " + std::to_string(e.end) + " runs past the data section (" +
                 std::to_string(data_sz) + " bytes; truncated?)");
        const uint64_t esize = c10::elementSize(e.dtype);
        if (numel > std::numeric_limits<uint64_t>::max() / esize || numel * esize != e.end - e.begin)
            fail(where + " byte range " + std::to_string(e.end - e.begin) + " does not match its shape and dtype (" +
                 std::to_string(numel) + " x " + std::to_string(esize) + " bytes)");
        entries_.push_back(std::move(e));
    }

    std::vector<const TensorEntry*> by_offset;
    for (const auto& e : entries_) by_offset.push_back(&e);
    std::sort(by_offset.begin(), by_offset.end(), [](auto a, auto b) { return a->begin < b->begin; });
    for (size_t i = 1; i < by_offset.size(); ++i)
        if (by_offset[i]->begin < by_offset[i - 1]->end && by_offset[i]->begin != by_offset[i]->end)
            fail("tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name + "' overlap");

    std::sort(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    for (size_t i = 0; i < entries_.size(); ++i) index_[entries_[i].name] = i;
}

SafetensorsFile::~SafetensorsFile() {
    if (map_) ::munmap(map_, size_);
    if (fd_ >= 0) ::close(fd_);
}

const TensorEntry* SafetensorsFile::find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &entries_[it->second];
}

torch::Tensor SafetensorsFile::load(const std::string& name) const {
    const TensorEntry* e = find(name);
    if (!e) input_error(path_ + ": missing tensor '" + name + "'");
    auto t = torch::empty(e->shape, torch::TensorOptions().dtype(e->dtype));
    if (e->end > e->begin) std::memcpy(t.data_ptr(), static_cast<const char*>(map_) + data_start_ + e->begin, e->end - e->begin);
    return t;
}

SafetensorsReader::SafetensorsReader(const std::string& path) : path_(path) {
    const std::string suffix = ".json";
    const bool is_index = path.size() > suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
    if (!is_index) {
        files_.push_back(std::make_shared<SafetensorsFile>(path));
        for (const auto& e : files_[0]->entries()) where_[e.name] = 0;
        return;
    }
    const nlohmann::json index = read_json_file(path);
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
        input_error(path + ": sharded safetensors index has no 'weight_map' object");
    const std::string dir = path.find('/') == std::string::npos ? std::string(".") : path.substr(0, path.rfind('/'));
    std::map<std::string, size_t> shard_ids;
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
        if (!it.value().is_string()) input_error(path + ": weight_map['" + it.key() + "'] is not a file name");
        const std::string shard = it.value().get<std::string>();
        if (shard.find("..") != std::string::npos || (!shard.empty() && shard[0] == '/'))
            input_error(path + ": weight_map['" + it.key() + "'] = '" + shard + "' must be a file next to the index");
        auto sid = shard_ids.find(shard);
        if (sid == shard_ids.end()) {
            files_.push_back(std::make_shared<SafetensorsFile>(dir + "/" + shard));
            sid = shard_ids.emplace(shard, files_.size() - 1).first;
        }
        if (!files_[sid->second]->find(it.key()))
            input_error(path + ": weight_map names tensor '" + it.key() + "' in shard '" + shard + "', which does not hold it");
        where_[it.key()] = sid->second;
    }
}

std::vector<std::string> SafetensorsReader::names() const {
    std::vector<std::string> out;
    for (const auto& kv : where_) out.push_back(kv.first);
    return out;
}

const TensorEntry& SafetensorsReader::entry(const std::string& name) const {
    auto it = where_.find(name);
    if (it == where_.end()) input_error(path_ + ": missing tensor '" + name + "'");
    return *files_[it->second]->find(name);
}

torch::Tensor SafetensorsReader::load(const std::string& name) const {
    auto it = where_.find(name);
    if (it == where_.end()) input_error(path_ + ": missing tensor '" + name + "'");
    return files_[it->second]->load(name);
}

std::string SafetensorsReader::file_of(const std::string& name) const {
    auto it = where_.find(name);
    return it == where_.end() ? path_ : files_[it->second]->path();
}

std::map<std::string, std::string> SafetensorsReader::metadata() const {
    std::map<std::string, std::string> out;
    for (const auto& f : files_) out.insert(f->metadata().begin(), f->metadata().end());
    return out;
}

std::map<std::string, torch::Tensor> SafetensorsReader::load_all() const {
    std::map<std::string, torch::Tensor> out;
    for (const auto& kv : where_) out[kv.first] = files_[kv.second]->load(kv.first);
    return out;
}

void write_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
    nlohmann::json            header = nlohmann::json::object();
    std::vector<torch::Tensor> data;
    size_t                     offset = 0;
    if (!metadata.empty()) header["__metadata__"] = metadata;
    for (const auto& kv : tensors) {
        auto t = kv.second.detach().to(torch::kCPU).contiguous();
        const size_t bytes = size_t(t.numel()) * t.element_size();
        header[kv.first]   = {{"dtype", dtype_name(t.scalar_type())},
                              {"shape", t.sizes().vec()},
                              {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
        data.push_back(t);
    }
    std::string h = header.dump();
    h.append((8 - h.size() % 8) % 8, ' ');
    const std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f) input_error(path + ": cannot open for writing (" + std::strerror(errno) + ")");
        unsigned char len[8];
        uint64_t      n = h.size();
        for (int i = 0; i < 8; ++i) len[i] = (n >> (8 * i)) & 0xff;
        f.write(reinterpret_cast<const char*>(len), 8);
        f.write(h.data(), std::streamsize(h.size()));
        for (const auto& t : data) f.write(static_cast<const char*>(t.data_ptr()), std::streamsize(t.numel() * t.element_size()));
        f.flush();
        if (!f) {
            std::remove(tmp.c_str());
            input_error(path + ": write failed (" + std::strerror(errno) + ")");
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        input_error(path + ": cannot replace file (" + std::strerror(errno) + ")");
    }
}

}  // namespace profdit::io
