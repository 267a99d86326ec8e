#pragma once

#include <algorithm>
#include <vector>

namespace profdit {

// Median of timings (mean of the middle two for an even count; 0 for none).
inline double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

}  // namespace profdit
