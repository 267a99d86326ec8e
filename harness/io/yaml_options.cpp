#include "io/yaml_options.h"

#include <cmath>
#include <filesystem>
#include <sstream>

#include "common/error.h"
#include "common/format.h"

namespace profdit::io {

namespace {

std::string scalar_text(const YAML::Node& n) {
    if (n.IsScalar()) return "'" + n.Scalar() + "'";
    YAML::Emitter e;
    e << YAML::Flow << n;
    return e.c_str();
}

}  // namespace

YAML::Node load_yaml_file(const std::string& path, const std::string& what, const std::string& expect) {
    if (!std::filesystem::is_regular_file(path)) input_error(path + ": cannot open " + what);
    YAML::Node root;
    try {
        root = YAML::LoadFile(path);
    } catch (const YAML::ParserException& e) {
        input_error(path + ":" + std::to_string(e.mark.line + 1) + ": malformed YAML (" + e.msg + ")");
    } catch (const YAML::Exception& e) {
        input_error(path + ": cannot read " + what + " (" + e.msg + ")");
    }
    const bool vowel = !what.empty() && std::string("aeiouAEIOU").find(what[0]) != std::string::npos;
    if (!root.IsMap()) input_error(path + ": " + (vowel ? "an " : "a ") + what + " must be a YAML map" + (expect.empty() ? "" : " " + expect));
    return root;
}

std::string key_name(const YAML::Node& key, const std::string& where) {
    if (key.IsScalar()) return key.Scalar();
    input_error(where + ": a key must be a name, got " + (key.IsNull() ? std::string("an empty key") : scalar_text(key)));
}

Options::Options(const YAML::Node& map, std::string section, std::string source)
    : map_(map), section_(std::move(section)), source_(std::move(source)) {
    if (map_ && !map_.IsNull() && !map_.IsMap())
        input_error(source_ + ": " + section_ + ": options must be a map, got " + scalar_text(map_));
}

std::string Options::where(const std::string& key) const {
    std::string loc = source_;
    if (map_ && map_.IsMap() && map_[key] && map_[key].Mark().line >= 0)
        loc += ":" + std::to_string(map_[key].Mark().line + 1);
    return loc + ": " + section_ + ": option '" + key + "'";
}

void Options::fail(const std::string& key, const std::string& what) const { input_error(where(key) + " " + what); }

bool Options::has(const std::string& key) const { return map_ && map_.IsMap() && map_[key]; }

YAML::Node Options::get_node(const std::string& key) {
    read_.insert(key);
    return has(key) ? map_[key] : YAML::Node(YAML::NodeType::Undefined);
}

int Options::get_int(const std::string& key, int def, int min, int max) {
    read_.insert(key);
    if (!has(key)) return def;
    const auto n = map_[key];
    int v = 0;
    try {
        v = n.as<int>();
    } catch (const YAML::Exception&) {
        fail(key, "must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " + scalar_text(n));
    }
    if (v < min || v > max)
        fail(key, "must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " + std::to_string(v));
    return v;
}

double Options::get_double(const std::string& key, double def, double min, double max) {
    read_.insert(key);
    if (!has(key)) return def;
    const auto n = map_[key];
    double v = 0;
    try {
        v = n.as<double>();
    } catch (const YAML::Exception&) {
        fail(key, "must be a number in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " + scalar_text(n));
    }
    if (!std::isfinite(v) || v < min || v > max)
        fail(key, "must be a number in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " + scalar_text(n));
    return v;
}

std::string Options::get_string(const std::string& key, const std::string& def) {
    read_.insert(key);
    if (!has(key)) return def;
    const auto n = map_[key];
    if (!n.IsScalar()) fail(key, "must be a string, got " + scalar_text(n));
    return n.Scalar();
}

bool Options::get_bool(const std::string& key, bool def) {
    read_.insert(key);
    if (!has(key)) return def;
    const auto n = map_[key];
    try {
        return n.as<bool>();
    } catch (const YAML::Exception&) {
        fail(key, "must be true or false, got " + scalar_text(n));
    }
}

std::string Options::get_choice(const std::string& key, const std::string& def, const std::vector<std::string>& choices) {
    const std::string v = get_string(key, def);
    for (const auto& c : choices)
        if (c == v) return v;
    fail(key, "must be one of " + join(choices) + ", got '" + v + "'");
}

std::vector<int> Options::get_int_list(const std::string& key, int min, int max) {
    read_.insert(key);
    std::vector<int> out;
    if (!has(key)) return out;
    const auto n = map_[key];
    if (!n.IsSequence()) fail(key, "must be a list of integers, got " + scalar_text(n));
    for (const auto& e : n) {
        int v = 0;
        try {
            v = e.as<int>();
        } catch (const YAML::Exception&) {
            fail(key, "must be a list of integers, got element " + scalar_text(e));
        }
        if (v < min || v > max)
            fail(key, "entries must be in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " + std::to_string(v));
        out.push_back(v);
    }
    return out;
}

std::vector<double> Options::get_double_list(const std::string& key) {
    read_.insert(key);
    std::vector<double> out;
    if (!has(key)) return out;
    const auto n = map_[key];
    if (!n.IsSequence()) fail(key, "must be a list of numbers, got " + scalar_text(n));
    for (const auto& e : n) {
        try {
            out.push_back(e.as<double>());
        } catch (const YAML::Exception&) {
            fail(key, "must be a list of numbers, got element " + scalar_text(e));
        }
    }
    return out;
}

void Options::finish() {
    if (!map_ || !map_.IsMap()) return;
    std::vector<std::string> accepted(read_.begin(), read_.end());
    for (auto it = map_.begin(); it != map_.end(); ++it) {
        const std::string key = key_name(it->first, source_ + (it->first.Mark().line >= 0 ? ":" + std::to_string(it->first.Mark().line + 1) : "") + ": " + section_);
        if (key == "name") continue;
        if (!read_.count(key))
            input_error(source_ + (it->first.Mark().line >= 0 ? ":" + std::to_string(it->first.Mark().line + 1) : "") +
                        ": " + section_ + ": unknown option '" + key + "' (accepted: " + join(accepted) + ")");
    }
}

}  // namespace profdit::io
