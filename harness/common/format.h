#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace profdit {

// printf-style formatting of one number: format_number("%.3f", 1.5) -> "1.500".
inline std::string format_number(const char* fmt, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, fmt, v);
    return buf;
}

// join({"a", "b"}) -> "a, b".
inline std::string join(const std::vector<std::string>& v, const std::string& sep = ", ") {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
    return out;
}

}  // namespace profdit
