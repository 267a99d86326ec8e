// Safetensors header parser and reader: every entry the reader accepts must load.
#include "fuzz_input.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto path = profdit::fuzz::write_input(data, size, ".safetensors");
    return profdit::fuzz::run_parser(path, [&] {
        profdit::io::SafetensorsReader reader(path);
        for (const auto& name : reader.names()) {
            const auto t = reader.load(name);
            const auto& e = reader.entry(name);
            if (t.numel() * int64_t(t.element_size()) != int64_t(e.end - e.begin)) std::abort();
        }
    });
}
