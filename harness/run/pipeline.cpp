#include "run/pipeline.h"

#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/device.h"
#include "common/error.h"
#include "world/detector.h"
#include "world/embedded_model.h"

namespace profdit::run {

std::string preset_dir(const std::string& preset) {
    const char* env  = std::getenv("PROFDIT_DATA");
    const std::string data = env && *env ? env : PROFDIT_SOURCE_DATA_DIR;
    return data + "/models/" + preset;
}

std::string file_fingerprint(const std::vector<std::string>& files) {
    uint64_t h = 1469598103934665603ull;
    std::vector<char> buf(1 << 20);
    for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        if (!in) input_error(f + ": cannot be read");
        while (in) {
            in.read(buf.data(), std::streamsize(buf.size()));
            for (std::streamsize i = 0; i < in.gcount(); ++i) h = (h ^ uint8_t(buf[size_t(i)])) * 1099511628211ull;
        }
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    return hex;
}

Pipeline load_pipeline(const ModelSpec& spec, const std::string& source) {
    if (!spec.checkpoint.empty())
        input_error(source + ": model: checkpoint '" + spec.checkpoint +
                    "' needs the Wan2.1 text encoder (umT5) and VAE, which this build does not have yet; use a world model "
                    "(preset: sprites-tiny or dir: FOLDER)");
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
