#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace profdit::io {

// One tensor as described by a safetensors header. Offsets are relative to the data section.
struct TensorEntry {
    std::string          name;
    c10::ScalarType      dtype;
    std::vector<int64_t> shape;
    size_t               begin = 0;
    size_t               end   = 0;
};

// A memory-mapped .safetensors file whose header has been fully validated on open: every entry has a
// known dtype, a shape whose byte size equals its offset range, and a range inside the file.
class SafetensorsFile {
  public:
    explicit SafetensorsFile(const std::string& path);
    ~SafetensorsFile();
    SafetensorsFile(const SafetensorsFile&)            = delete;
    SafetensorsFile& operator=(const SafetensorsFile&) = delete;

    const std::string&                        path() const { return path_; }
    const std::vector<TensorEntry>&           entries() const { return entries_; }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    const TensorEntry*                        find(const std::string& name) const;
    torch::Tensor                             load(const std::string& name) const;  // owned CPU copy

  private:
    std::string                        path_;
    int                                fd_   = -1;
    void*                              map_  = nullptr;
    size_t                             size_ = 0;
    size_t                             data_start_ = 0;
    std::vector<TensorEntry>           entries_;
    std::map<std::string, size_t>      index_;
    std::map<std::string, std::string> metadata_;
};

// A checkpoint made of one .safetensors file or of the shards listed in a *.safetensors.index.json.
class SafetensorsReader {
  public:
    explicit SafetensorsReader(const std::string& path);

    const std::string&       path() const { return path_; }
    std::vector<std::string> names() const;
    bool                     contains(const std::string& name) const { return where_.count(name) != 0; }
    const TensorEntry&       entry(const std::string& name) const;  // InputError naming file and key
    torch::Tensor            load(const std::string& name) const;   // InputError naming file and key
    std::string              file_of(const std::string& name) const;
    // The __metadata__ of every file (shards in index order; a key seen twice keeps its first value).
    std::map<std::string, std::string> metadata() const;
    // Loads every tensor; `expect` maps names to required dtypes/shapes is left to callers.
    std::map<std::string, torch::Tensor> load_all() const;

  private:
    std::string                                   path_;
    std::vector<std::shared_ptr<SafetensorsFile>> files_;
    std::map<std::string, size_t>                 where_;
};

// Writes tensors (any device/dtype among the supported ones; stored as given) sorted by name, with an
// optional __metadata__ block. Written to a temporary file and renamed, so an existing file is never
// left half-written.
void write_safetensors(const std::string&                          path,
                       const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, std::string>&   metadata = {});

const char*     dtype_name(c10::ScalarType t);      // "F32", "BF16", ...
c10::ScalarType dtype_from_name(const std::string& s, const std::string& context);

}  // namespace profdit::io
