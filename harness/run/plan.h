#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "run/experiment.h"

namespace profdit::run {

// --shard K/N: this process runs the (prompt, seed) pairs whose index is K-1 modulo N, each with its
// reference and all its policy runs, so shards never share a reference.
struct Shard {
    int         index = 1, count = 1;
    static Shard parse(const std::string& text);  // "K/N", 1 <= K <= N; InputError otherwise
    bool        owns(size_t pair) const { return int(pair % size_t(count)) == index - 1; }
    std::string text() const;  // "" when unsharded
};

// One (prompt, seed) pair of the grid, prompt-major.
struct Pair {
    size_t      index  = 0;
    int         prompt = 0;
    uint64_t    seed   = 0;
    std::string reference;  // group path /references/<prompt>_<seed>
};

std::vector<Pair> grid_pairs(const Experiment& x);
std::string       run_group(const std::string& policy_tag, const Pair& p);  // /runs/<tag>_p<prompt>_s<seed>

}  // namespace profdit::run
