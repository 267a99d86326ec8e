#include "io/json_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace profdit::io {

nlohmann::json read_json_file(const std::string& path) {
    std::ifstream f(path);
    if (!f) input_error(path + ": cannot open JSON file (" + std::strerror(errno) + ")");
    std::stringstream ss;
    ss << f.rdbuf();
    try {
        return nlohmann::json::parse(ss.str());
    } catch (const nlohmann::json::parse_error& e) {
        input_error(path + ": malformed JSON at byte " + std::to_string(e.byte) + " (" + e.what() + ")");
    }
}

}  // namespace profdit::io
