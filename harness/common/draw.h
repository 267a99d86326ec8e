#pragma once

#include <cstdint>
#include <random>

namespace profdit {

// Uniform draws from std::mt19937_64, written out because the standard library's distributions are
// implementation-defined: libstdc++ and libc++ turn the same engine outputs into different numbers. The engine's outputs
// are fixed by the standard, so these draws (and the scenes and batches made from them) are the same everywhere.

// An integer in [0, n), n > 0, without modulo bias: outputs below 2^64 mod n are rejected.
inline uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
    const uint64_t reject = (UINT64_MAX % n + 1) % n;
    for (;;) {
        const uint64_t x = rng();
        if (x >= reject) return x % n;
    }
}

// An integer in [lo, hi].
inline int64_t uniform_int(std::mt19937_64& rng, int64_t lo, int64_t hi) { return lo + int64_t(uniform_below(rng, uint64_t(hi - lo) + 1)); }

// A double in [0, 1) from the top 53 bits of one output.
inline double uniform01(std::mt19937_64& rng) { return double(rng() >> 11) * 0x1.0p-53; }

// A double in [a, b).
inline double uniform_real(std::mt19937_64& rng, double a, double b) { return a + (b - a) * uniform01(rng); }

}  // namespace profdit
