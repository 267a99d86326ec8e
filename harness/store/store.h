#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

// The experiment result file (docs/hdf5-schema.md). Each operation opens the file, does its work and closes
// it; writes go through an undo journal, so a process killed at any moment leaves the file as of its last
// completed write.
namespace profdit::store {

constexpr int kFormatVersion = 1;

// The root attributes.
struct FileInfo {
    int                      format_version = kFormatVersion;  // written as kFormatVersion
    std::string              profdit_version, git_commit, torch_version, device, dtype, created, experiment_yaml;
    std::string              model;        // the model and a fingerprint of its weights, e.g. "sprites-tiny fnv1a64:3f0c..."
    std::string              shard;        // "K/N" for a shard's file, "" otherwise
    std::vector<std::string> merged_from;  // the inputs of a merged file (attribute absent when empty)
};

// One group's content, written in one go.
struct Record {
    struct Dataset {
        torch::Tensor                      data;  // float32/float64/int8/int16/int32/int64/uint8/bool (-> uint8)
        std::map<std::string, double>      num_attrs;
        std::map<std::string, std::string> str_attrs;
        bool                               compress = false;  // chunked + deflate 4 (video frames)
    };
    std::map<std::string, std::string> str_attrs;
    std::map<std::string, double>      num_attrs;
    std::map<std::string, int64_t>     int_attrs;
    std::map<std::string, Dataset>     datasets;  // relative paths such as "latency/step_ms"
};

class Store {
  public:
    // Creates PATH with the root attributes (InputError if it exists), or with resume=true continues an
    // existing file after checking its format version and that its experiment_yaml equals info's.
    static Store    open(const std::string& path, const FileInfo& info, bool resume);
    static Store    open_existing(const std::string& path);  // for reading (report, tests); errors as read_info
    static FileInfo read_info(const std::string& path);       // InputError for a missing, foreign or newer file

    const std::string& path() const { return path_; }

    std::string status(const std::string& group) const;  // "" when the group (or its status) does not exist
    // Replaces the group, writes the record, sets `status` last and closes the file.
    void write(const std::string& group, const Record& record, const std::string& status);
    void set_status(const std::string& group, const std::string& status);  // creates the group if needed

    bool                     exists(const std::string& path) const;
    std::vector<std::string> groups(const std::string& parent) const;    // child group names, sorted
    std::vector<std::string> datasets(const std::string& parent) const;  // child dataset names, sorted
    torch::Tensor            read_dataset(const std::string& path) const;
    std::string              read_str_attr(const std::string& obj, const std::string& name) const;
    double                   read_num_attr(const std::string& obj, const std::string& name) const;  // int or float
    int64_t                  read_int_attr(const std::string& obj, const std::string& name) const;

  private:
    explicit Store(std::string path) : path_(std::move(path)) {}
    std::string path_;
};

struct MergeSummary {
    std::vector<std::string> copied;   // "/runs/<id>", "/references/<p>_<s>"
    std::vector<std::string> skipped;  // "FILE:/runs/<id> (status)" for groups that are not done
};

// Joins shard files into OUT (written to a temporary file, then renamed). All inputs must share format
// version, experiment_yaml, device and dtype. Copies the /runs/*, /references/* and /budget/* groups whose status is
// "done"; a group in several inputs must be done in all of them and is taken from the first. Root attributes
// come from the first input with `shard` cleared and `merged_from` = INPUTS.
MergeSummary merge(const std::string& out, const std::vector<std::string>& inputs, bool overwrite);

}  // namespace profdit::store
