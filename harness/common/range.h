#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "common/format.h"

namespace profdit {

// The range of repeated measurements as a table cell: "1.480-1.550" (printf format per end); "" for none.
inline std::string format_range(const std::vector<double>& v, const char* fmt = "%.3f") {
    if (v.empty()) return "";
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    return format_number(fmt, *lo) + "-" + format_number(fmt, *hi);
}

}  // namespace profdit
