#include "store/store.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <stdexcept>

#include "common/error.h"
#include "store/h5.h"

namespace profdit::store {

namespace fs = std::filesystem;

namespace {

const char* const kParents[] = {"/runs", "/references", "/budget"};

std::string now_utc() {
    const std::time_t t = std::time(nullptr);
    std::tm           tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string temp_path(const std::string& path) { return path + ".tmp-" + std::to_string(::getpid()); }

bool file_exists(const std::string& path) {
    std::error_code ec;
    return fs::exists(fs::symlink_status(path, ec));
}

// Moves the finished temporary file TMP to DST; without OVERWRITE an existing DST is an error.
void install(const std::string& tmp, const std::string& dst, bool overwrite) {
    if (!overwrite) {
        if (::link(tmp.c_str(), dst.c_str()) == 0) {
            ::unlink(tmp.c_str());
            ::unlink(h5::journal_path(dst).c_str());
            return;
        }
        if (errno == EEXIST) {
            ::unlink(tmp.c_str());
            input_error(dst + " already exists (created meanwhile by another process?)");
        }
    }
    ::unlink(h5::journal_path(dst).c_str());
    if (::rename(tmp.c_str(), dst.c_str()) != 0) {
        const std::string reason = std::strerror(errno);
        ::unlink(tmp.c_str());
        throw std::runtime_error(dst + ": cannot move " + tmp + " into place (" + reason + ")");
    }
}

void write_info(const h5::File& f, const FileInfo& info) {
    h5::write_attr(f, "/", "format_version", int64_t(info.format_version));
    h5::write_attr(f, "/", "profdit_version", info.profdit_version);
    h5::write_attr(f, "/", "git_commit", info.git_commit);
    h5::write_attr(f, "/", "torch_version", info.torch_version);
    h5::write_attr(f, "/", "device", info.device);
    h5::write_attr(f, "/", "dtype", info.dtype);
    h5::write_attr(f, "/", "model", info.model);
    h5::write_attr(f, "/", "created", info.created.empty() ? now_utc() : info.created);
    h5::write_attr(f, "/", "experiment_yaml", info.experiment_yaml);
    h5::write_attr(f, "/", "shard", info.shard);
    if (!info.merged_from.empty()) h5::write_attr(f, "/", "merged_from", info.merged_from);
}

void create_file(const std::string& path, const FileInfo& info) {
    const fs::path parent = fs::path(path).parent_path();
    if (!parent.empty()) {
        std::error_code ec;
        fs::create_directories(parent, ec);
    }
    const std::string tmp = temp_path(path);
    {
        h5::File f(tmp, h5::Mode::create);
        write_info(f, info);
        for (const char* p : kParents) h5::create_group(f, p);
        f.commit();
    }
    install(tmp, path, false);
}

std::string group_path(const std::string& store, const std::string& group) {
    const std::string g = h5::absolute(group);
    if (g == "/") throw std::runtime_error(store + ": a record needs a group below the root");
    return g;
}

}  // namespace

Store Store::open(const std::string& path, const FileInfo& info, bool resume) {
    if (file_exists(path)) {
        if (!resume) input_error(path + " already exists; pass --resume to continue it, or delete it");
        const FileInfo old = read_info(path);
        if (old.experiment_yaml != info.experiment_yaml)
            input_error(path + " belongs to a different experiment (its experiment_yaml differs from this one); "
                               "use another output file or delete it");
        if (old.model != info.model)
            input_error(path + " was written with other model weights (" + old.model + ", now " + info.model +
                        "); use another output file or delete it");
        return Store(path);
    }
    FileInfo fresh       = info;
    fresh.format_version = kFormatVersion;
    create_file(path, fresh);
    return Store(path);
}

Store Store::open_existing(const std::string& path) {
    read_info(path);
    return Store(path);
}

FileInfo Store::read_info(const std::string& path) {
    h5::File f(path, h5::Mode::read);
    if (!h5::has_attr(f, "/", "format_version"))
        input_error(path + " is not a profdit result file (no format_version attribute)");
    const int64_t version = h5::read_int_attr(f, "/", "format_version");
    if (version > kFormatVersion)
        input_error(path + " was written by format version " + std::to_string(version) +
                    "; this profdit reads up to " + std::to_string(kFormatVersion) + ", update profdit");
    if (version < 1) input_error(path + ": invalid format_version " + std::to_string(version));

    FileInfo info;
    info.format_version  = int(version);
    info.profdit_version = h5::read_str_attr(f, "/", "profdit_version");
    info.git_commit      = h5::read_str_attr(f, "/", "git_commit");
    info.torch_version   = h5::read_str_attr(f, "/", "torch_version");
    info.device          = h5::read_str_attr(f, "/", "device");
    info.dtype           = h5::read_str_attr(f, "/", "dtype");
    if (h5::has_attr(f, "/", "model")) info.model = h5::read_str_attr(f, "/", "model");
    info.created         = h5::read_str_attr(f, "/", "created");
    info.experiment_yaml = h5::read_str_attr(f, "/", "experiment_yaml");
    if (h5::has_attr(f, "/", "shard")) info.shard = h5::read_str_attr(f, "/", "shard");
    if (h5::has_attr(f, "/", "merged_from")) info.merged_from = h5::read_str_list_attr(f, "/", "merged_from");
    return info;
}

std::string Store::status(const std::string& group) const {
    const std::string g = h5::absolute(group);
    h5::File          f(path_, h5::Mode::read);
    return h5::has_attr(f, g, "status") ? h5::read_str_attr(f, g, "status") : "";
}

void Store::write(const std::string& group, const Record& record, const std::string& status) {
    const std::string g = group_path(path_, group);
    h5::File          f(path_, h5::Mode::write);
    if (h5::exists(f, g)) h5::remove(f, g);
    h5::create_group(f, g);
    for (const auto& [name, value] : record.str_attrs) h5::write_attr(f, g, name, value);
    for (const auto& [name, value] : record.num_attrs) h5::write_attr(f, g, name, value);
    for (const auto& [name, value] : record.int_attrs) h5::write_attr(f, g, name, value);
    for (const auto& [rel, ds] : record.datasets) {
        if (rel.empty() || rel[0] == '/')
            throw std::runtime_error(path_ + ": " + g + ": bad dataset path '" + rel + "' (must be relative)");
        const std::string p = g + "/" + rel;
        h5::write_tensor(f, p, ds.data, ds.compress);
        for (const auto& [name, value] : ds.num_attrs) h5::write_attr(f, p, name, value);
        for (const auto& [name, value] : ds.str_attrs) h5::write_attr(f, p, name, value);
    }
    h5::write_attr(f, g, "status", status);
    f.commit();
}

void Store::set_status(const std::string& group, const std::string& status) {
    const std::string g = group_path(path_, group);
    h5::File          f(path_, h5::Mode::write);
    if (!h5::exists(f, g)) h5::create_group(f, g);
    h5::write_attr(f, g, "status", status);
    f.commit();
}

bool Store::exists(const std::string& path) const {
    h5::File f(path_, h5::Mode::read);
    return h5::exists(f, h5::absolute(path));
}

std::vector<std::string> Store::groups(const std::string& parent) const {
    h5::File f(path_, h5::Mode::read);
    return h5::children(f, h5::absolute(parent), H5I_GROUP);
}

std::vector<std::string> Store::datasets(const std::string& parent) const {
    h5::File f(path_, h5::Mode::read);
    return h5::children(f, h5::absolute(parent), H5I_DATASET);
}

torch::Tensor Store::read_dataset(const std::string& path) const {
    h5::File f(path_, h5::Mode::read);
    return h5::read_tensor(f, h5::absolute(path));
}

std::string Store::read_str_attr(const std::string& obj, const std::string& name) const {
    h5::File f(path_, h5::Mode::read);
    return h5::read_str_attr(f, h5::absolute(obj), name);
}

double Store::read_num_attr(const std::string& obj, const std::string& name) const {
    h5::File f(path_, h5::Mode::read);
    return h5::read_num_attr(f, h5::absolute(obj), name);
}

int64_t Store::read_int_attr(const std::string& obj, const std::string& name) const {
    h5::File f(path_, h5::Mode::read);
    return h5::read_int_attr(f, h5::absolute(obj), name);
}

MergeSummary merge(const std::string& out, const std::vector<std::string>& inputs, bool overwrite) {
    if (inputs.empty()) input_error("merge: no input files");
    if (!overwrite && file_exists(out)) input_error(out + " already exists; refusing to overwrite it (pass --force, or delete it)");

    std::vector<FileInfo> infos;
    for (const auto& in : inputs) infos.push_back(Store::read_info(in));
    for (size_t i = 1; i < inputs.size(); ++i) {
        const FileInfo& a      = infos[0];
        const FileInfo& b      = infos[i];
        auto            differ = [&](const std::string& what) {
            input_error(inputs[0] + " and " + inputs[i] + " differ in " + what +
                        "; only the shards of one experiment can be merged");
        };
        if (a.format_version != b.format_version)
            differ("format_version (" + std::to_string(a.format_version) + " vs " +
                   std::to_string(b.format_version) + ")");
        if (a.experiment_yaml != b.experiment_yaml) differ("experiment_yaml");
        if (a.device != b.device) differ("device (" + a.device + " vs " + b.device + ")");
        if (a.dtype != b.dtype) differ("dtype (" + a.dtype + " vs " + b.dtype + ")");
        if (a.model != b.model) differ("model weights (" + a.model + " vs " + b.model + ")");
    }

    struct Seen {
        size_t      input;
        std::string status;
    };
    std::map<std::string, std::vector<Seen>> seen;
    for (size_t i = 0; i < inputs.size(); ++i) {
        h5::File src(inputs[i], h5::Mode::read);
        for (const char* parent : kParents)
            for (const auto& name : h5::children(src, parent, H5I_GROUP)) {
                const std::string p = std::string(parent) + "/" + name;
                seen[p].push_back({i, h5::has_attr(src, p, "status") ? h5::read_str_attr(src, p, "status") : ""});
            }
    }

    MergeSummary                          summary;
    std::vector<std::vector<std::string>> take(inputs.size());
    for (const auto& [p, list] : seen) {
        const Seen& first = list[0];
        for (const Seen& s : list)
            if (list.size() > 1 && s.status != "done") {
                const Seen& other = s.input == first.input ? list[1] : s;
                input_error(p + " is in " + inputs[first.input] + " (status '" + first.status + "') and in " +
                            inputs[other.input] + " (status '" + other.status +
                            "'); a group in several inputs must be done in all of them");
            }
        if (first.status == "done") {
            take[first.input].push_back(p);
            summary.copied.push_back(p);
        } else {
            summary.skipped.push_back(inputs[first.input] + ":" + p + " (" +
                                      (first.status.empty() ? "no status" : first.status) + ")");
        }
    }

    FileInfo merged    = infos[0];
    merged.shard       = "";
    merged.merged_from = inputs;
    const std::string tmp = temp_path(out);
    {
        h5::File dst(tmp, h5::Mode::create);
        write_info(dst, merged);
        for (const char* p : kParents) h5::create_group(dst, p);
        for (size_t i = 0; i < inputs.size(); ++i) {
            if (take[i].empty()) continue;
            h5::File src(inputs[i], h5::Mode::read);
            for (const auto& p : take[i]) h5::copy(src, p, dst, p);
        }
        dst.commit();
    }
    install(tmp, out, overwrite);
    return summary;
}

}  // namespace profdit::store
