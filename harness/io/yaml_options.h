#pragma once

#include <set>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace profdit::io {

// Reads a YAML file that must be a map: InputError "<path>: cannot open <what>" when it is missing,
// "<path>:<line>: malformed YAML (...)" when it does not parse, and "<path>: <what> must be a YAML map
// <expect>" otherwise.
YAML::Node load_yaml_file(const std::string& path, const std::string& what, const std::string& expect = "");

// A map key as text; InputError "<where>: a key must be a name, got [1, 2]" for a list, map or empty key.
std::string key_name(const YAML::Node& key, const std::string& where);

// A YAML map of options (a policy's, a training config's section), read key by key with validation.
// Every error is an InputError naming the source (file:line), the section, the option, the value and
// what is accepted; finish() rejects keys that were never read.
class Options {
  public:
    Options(const YAML::Node& map, std::string section, std::string source);

    bool        has(const std::string& key) const;
    int         get_int(const std::string& key, int def, int min, int max);
    double      get_double(const std::string& key, double def, double min, double max);
    std::string get_choice(const std::string& key, const std::string& def, const std::vector<std::string>& choices);
    std::string get_string(const std::string& key, const std::string& def);
    bool        get_bool(const std::string& key, bool def);
    std::vector<int>    get_int_list(const std::string& key, int min, int max);
    std::vector<double> get_double_list(const std::string& key);
    YAML::Node          get_node(const std::string& key);  // marks it read; undefined node when absent
    void                finish();
    [[noreturn]] void   fail(const std::string& key, const std::string& what) const;

    const std::string& section() const { return section_; }
    const std::string& source() const { return source_; }

  private:
    YAML::Node            map_;
    std::string           section_, source_;
    std::set<std::string> read_;
    std::string           where(const std::string& key) const;
};

}  // namespace profdit::io
