#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>
#include <unistd.h>

#include "common/error.h"

// Shared by the fuzz targets: the parsers take paths, so each input is written to a per-process file
// (under /dev/shm when it exists) and handed over. The oracle: a parser may reject an input only with an
// InputError (the CLI's exit 2); any other exception is a missing validation and aborts, like a crash.
namespace profdit::fuzz {

inline std::string input_path(const char* suffix) {
    static const std::string dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    return dir + "/profdit-fuzz-" + std::to_string(getpid()) + suffix;
}

inline std::string write_input(const uint8_t* data, size_t size, const char* suffix) {
    struct Remove {
        std::string path;
        ~Remove() { std::remove(path.c_str()); }
    };
    static const Remove file{input_path(suffix)};
    const std::string& path = file.path;
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), std::streamsize(size));
    return path;
}

template <typename F>
int run_parser(const std::string& input, F&& parse) {
    try {
        parse();
    } catch (const InputError&) {
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fuzz: not an InputError: %s (input: %s)\n", e.what(), input.c_str());
        std::abort();
    }
    return 0;
}

}  // namespace profdit::fuzz
