// A libFuzzer-compatible driver for builds without libFuzzer (GCC, the release preset): runs every file of
// the given corpus folders through LLVMFuzzerTestOneInput, then --mutations N inputs mutated from them with
// a fixed seed (bit flips, byte edits, inserts, erases, duplicated and spliced ranges). No coverage
// guidance: this is the short fuzz run of the test suite; scripts/fuzz runs the guided fuzzers.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

using Bytes = std::vector<uint8_t>;

Bytes mutate(const std::vector<Bytes>& corpus, std::mt19937_64& rng) {
    auto pick = [&](size_t n) { return n == 0 ? size_t(0) : std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
    Bytes b = corpus[pick(corpus.size())];
    const int edits = 1 + int(pick(4));
    for (int e = 0; e < edits; ++e) {
        const size_t at = pick(b.size() + 1);
        switch (pick(7)) {
            case 0: if (!b.empty()) b[pick(b.size())] ^= uint8_t(1u << pick(8)); break;
            case 1: if (!b.empty()) b[pick(b.size())] = uint8_t(pick(256)); break;
            case 2: {
                static const uint8_t interesting[] = {0, 1, 0x7f, 0x80, 0xff, '-', '9', '[', '{', ':', '"', '\n', ' '};
                if (!b.empty()) b[pick(b.size())] = interesting[pick(sizeof interesting)];
                break;
            }
            case 3: b.insert(b.begin() + long(at), 1 + pick(8), uint8_t(pick(256))); break;
            case 4: if (at < b.size()) b.erase(b.begin() + long(at), b.begin() + long(std::min(b.size(), at + 1 + pick(16)))); break;
            case 5: if (at < b.size()) { const Bytes r(b.begin() + long(at), b.begin() + long(std::min(b.size(), at + 1 + pick(32)))); b.insert(b.begin() + long(pick(b.size() + 1)), r.begin(), r.end()); } break;
            default: {
                const Bytes& o = corpus[pick(corpus.size())];
                if (o.empty()) break;
                const size_t from = pick(o.size());
                b.resize(std::min(b.size(), at));
                b.insert(b.end(), o.begin() + long(from), o.end());
            }
        }
    }
    return b;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<Bytes> corpus;
    long mutations = 0;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--mutations" && i + 1 < argc) { mutations = std::atol(argv[++i]); continue; }
        if (a == "--seed" && i + 1 < argc) { seed = std::strtoull(argv[++i], nullptr, 10); continue; }
        std::vector<std::filesystem::path> files;
        if (std::filesystem::is_directory(a)) {
            for (const auto& e : std::filesystem::directory_iterator(a))
                if (e.is_regular_file()) files.push_back(e.path());
        } else {
            files.push_back(a);
        }
        std::sort(files.begin(), files.end());
        for (const auto& f : files) {
            std::ifstream in(f, std::ios::binary);
            if (!in) { std::fprintf(stderr, "%s: cannot be read\n", f.c_str()); return 2; }
            corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        }
    }
    if (corpus.empty()) { std::fprintf(stderr, "usage: %s CORPUS_DIR|FILE... [--mutations N] [--seed S]\n", argv[0]); return 2; }
    for (const auto& b : corpus) LLVMFuzzerTestOneInput(b.data(), b.size());
    std::mt19937_64 rng(seed);
    for (long i = 0; i < mutations; ++i) {
        const Bytes b = mutate(corpus, rng);
        LLVMFuzzerTestOneInput(b.data(), b.size());
    }
    std::printf("%zu corpus inputs and %ld mutations (seed %llu) ran without a crash or a non-InputError\n", corpus.size(), mutations, seed);
    return 0;
}
