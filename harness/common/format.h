#pragma once

#include <cstdio>
#include <string>

namespace profdit {

// printf-style formatting of one number: format_number("%.3f", 1.5) -> "1.500".
inline std::string format_number(const char* fmt, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, fmt, v);
    return buf;
}

}  // namespace profdit
