#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace profdit::io {

// Parses a JSON file; a missing file or a syntax error is an InputError naming the file (and byte).
nlohmann::json read_json_file(const std::string& path);

}  // namespace profdit::io
