#include "run/pipeline.h"

#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/device.h"
#include "common/error.h"
#include "wan/wan_pipeline.h"
#include "world/detector.h"
#include "world/embedded_model.h"

namespace profdit::run {

std::string preset_dir(const std::string& preset) {
    const char* env  = std::getenv("PROFDIT_DATA");
    const std::string data = env && *env ? env : PROFDIT_SOURCE_DATA_DIR;
    return data + "/models/" + preset;
}

std::string file_fingerprint(const std::vector<std::string>& files) {
    constexpr std::streamsize kSample = 1 << 20;
    constexpr uintmax_t       kWhole  = uintmax_t(64) << 20;
    uint64_t h = 1469598103934665603ull;
    std::vector<char> buf(static_cast<size_t>(kSample));
    auto mix = [&](const char* p, std::streamsize n) {
        for (std::streamsize i = 0; i < n; ++i) h = (h ^ uint8_t(p[i])) * 1099511628211ull;
    };
    for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        if (!in) input_error(f + ": cannot be read");
        std::error_code ec;
        const auto size = std::filesystem::file_size(f, ec);
        if (!ec && size > kWhole) {
            const std::string s = std::to_string(size);
            mix(s.data(), std::streamsize(s.size()));
            for (uintmax_t at : {uintmax_t(0), size / 2, size - uintmax_t(kSample)}) {
                in.clear();
                in.seekg(std::streamoff(at));
                in.read(buf.data(), kSample);
                mix(buf.data(), in.gcount());
            }
            continue;
        }
        while (in) {
            in.read(buf.data(), std::streamsize(buf.size()));
            mix(buf.data(), in.gcount());
        }
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    return hex;
}

namespace {

Pipeline load_wan(const ModelSpec& spec, const std::string& source) {
    const auto device = parse_device(spec.device);
    const auto dtype  = parse_dtype(spec.dtype);
    Pipeline   p;
    wan::WanParts parts;
    if (!spec.checkpoint.empty()) {
        const auto files = wan::find_checkpoint(spec.checkpoint);
        parts         = wan::load_wan_checkpoint(files, device, dtype);
        p.label       = std::filesystem::path(spec.checkpoint).lexically_normal().filename().string();
        if (p.label.empty()) p.label = std::filesystem::path(spec.checkpoint).lexically_normal().parent_path().filename().string();
        p.fingerprint = p.label + " (" + wan::layout_name(files.layout) + " layout) fnv1a64:" + file_fingerprint(files.weight_files());
    } else {
        const auto cfg = wan::named_config(spec.config, source);
        cfg.validate(spec.config);
        parts            = wan::init_random_wan(cfg, spec.seed, device, dtype);
        p.label          = std::filesystem::path(spec.config).stem().string();
        p.random_weights = true;
        p.fingerprint    = p.label + " random weights seed " + std::to_string(spec.seed) + " (" + cfg.variant() + ", " + cfg.to_json().dump() + ")";
    }
    p.dit             = parts.dit;
    p.text            = parts.text;
    p.decoder         = parts.decoder;
    p.latent_shape    = wan::wan21_latent_shape(spec.frames, spec.height, spec.width, source + ": model");
    p.latent_shape[0] = p.dit->config().in_dim;
    p.negative_prompt = wan::wan21_negative_prompt();
    return p;
}

}  // namespace

Pipeline load_pipeline(const ModelSpec& spec, const std::string& source) {
    if (spec.is_wan()) return load_wan(spec, source);
    std::string dir = spec.dir;
    if (!spec.preset.empty()) {
        dir = preset_dir(spec.preset);
        if (!std::filesystem::is_directory(dir)) {
            std::string known;
            const auto  models = std::filesystem::path(dir).parent_path();
            if (std::filesystem::is_directory(models))
                for (const auto& e : std::filesystem::directory_iterator(models))
                    if (e.is_directory()) known += (known.empty() ? "" : ", ") + e.path().filename().string();
            input_error(source + ": model: unknown preset '" + spec.preset + "' (shipped: " + known + "; set PROFDIT_DATA to another data folder)");
        }
    } else if (!std::filesystem::is_directory(dir)) {
        input_error(source + ": model: dir '" + dir + "' is not a folder");
    }
    const auto device = parse_device(spec.device);
    const auto dtype  = parse_dtype(spec.dtype);
    auto       m      = world::EmbeddedModel::load(dir, device, dtype);

    Pipeline p;
    p.label        = spec.preset.empty() ? std::filesystem::path(dir).filename().string() : spec.preset;
    p.fingerprint  = p.label + " fnv1a64:" + file_fingerprint({dir + "/dit.safetensors", dir + "/text_encoder.safetensors"});
    p.dit          = m.dit;
    p.text         = m.text;
    p.decoder      = std::make_shared<sampling::IdentityDecoder>();
    p.latent_shape = {int64_t(m.dit->config().in_dim), m.world.frames, m.world.height, m.world.width};
    p.negative_prompt = "";
    p.mask_source     = "gt";
    p.foreground_mask = [w = m.world](const torch::Tensor& frames, const std::string& prompt) {
        return world::detect(frames, prompt, w).mask;  // [F, H, W]
    };
    return p;
}

}  // namespace profdit::run
