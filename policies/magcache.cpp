#include "policies/magcache.h"

#include <cmath>
#include <filesystem>
#include <functional>
#include <stdexcept>

#include "common/error.h"
#include "sampling/scheduler.h"

namespace profdit::policies {

namespace {

struct Preset {
    const char*         name;
    const char*         variant;
    int                 blocks;
    std::vector<double> ratios[2];
};

// Zehong-Ma/MagCache, MagCache4Wan2.1/magcache_generate.py (mag_ratios, cond and uncond interleaved there;
// the leading 1.0 pair pads step 0).
const std::vector<Preset>& presets() {
    static const std::vector<Preset> p = {
        {"wan2.1-t2v-1.3b", "Wan2.1-T2V-1.3B", 30, {{1.0, 1.0124, 1.00166, 0.99791, 0.99682, 0.99634, 0.99567, 0.99416, 0.99578, 0.9957, 0.99511, 0.99535, 0.99552, 0.99541, 0.9954, 0.99489, 0.99518, 0.99484, 0.99481, 0.99415, 0.99419, 0.99396, 0.99388, 0.99349, 0.99309, 0.9927, 0.99228, 0.99171, 0.99137, 0.99068, 0.99005, 0.98944, 0.98849, 0.98758, 0.98644, 0.98504, 0.9836, 0.98202, 0.97977, 0.97717, 0.9741, 0.97003, 0.96538, 0.9593, 0.95086, 0.94013, 0.92402, 0.90241, 0.86821, 0.81838},
{1.0, 1.02213, 1.0041, 1.00061, 0.99762, 0.99685, 0.99586, 0.99422, 0.99575, 0.99563, 0.99506, 0.99531, 0.99549, 0.99539, 0.99536, 0.99485, 0.99514, 0.99478, 0.99479, 0.99413, 0.99416, 0.99393, 0.99386, 0.99349, 0.99304, 0.9927, 0.99226, 0.9917, 0.99135, 0.99063, 0.99003, 0.98942, 0.98849, 0.98757, 0.98643, 0.98503, 0.98359, 0.98201, 0.97978, 0.97718, 0.97411, 0.97002, 0.96541, 0.95933, 0.95089, 0.94019, 0.92414, 0.9026, 0.86868, 0.81939}}},
        {"wan2.1-t2v-14b", "Wan2.1-T2V-14B", 40, {{1.0, 1.02504, 1.00025, 0.9985, 0.99779, 0.9966, 0.99482, 0.99467, 0.99664, 0.99434, 0.99533, 0.99468, 0.99438, 0.99516, 0.99384, 0.99404, 0.99517, 0.99409, 0.99428, 0.99347, 0.99418, 0.99271, 0.99313, 0.99215, 0.99218, 0.99216, 0.99163, 0.99138, 0.98982, 0.98996, 0.9887, 0.98772, 0.98767, 0.98573, 0.98501, 0.9838, 0.98177, 0.98037, 0.97678, 0.97546, 0.97184, 0.96711, 0.96349, 0.95629, 0.94926, 0.93964, 0.92511, 0.90693, 0.8796, 0.86111},
{1.0, 1.03017, 1.00251, 0.99962, 0.99771, 0.99658, 0.99476, 0.99451, 0.99656, 0.99431, 0.99545, 0.99465, 0.99434, 0.99517, 0.9938, 0.99401, 0.99516, 0.99408, 0.99426, 0.99343, 0.99416, 0.99269, 0.99311, 0.99215, 0.99215, 0.99217, 0.99161, 0.99135, 0.9898, 0.98995, 0.98866, 0.9877, 0.98765, 0.9857, 0.98498, 0.98376, 0.98173, 0.98035, 0.97677, 0.97543, 0.97183, 0.96708, 0.96345, 0.95625, 0.94929, 0.93961, 0.92504, 0.90678, 0.87945, 0.86189}}},
    };
    return p;
}

void check_ratios(const MagRatios& r, const std::function<void(const std::string&, const std::string&)>& fail) {
    const size_t n = r.sigmas.size();
    if (n < 2) fail("sigmas", "must list at least 2 sigmas, one per step");
    for (size_t i = 0; i < n; ++i) {
        if (!std::isfinite(r.sigmas[i]) || r.sigmas[i] < 0) fail("sigmas", "must be finite and >= 0, got " + std::to_string(r.sigmas[i]));
        if (i > 0 && !(r.sigmas[i] < r.sigmas[i - 1])) fail("sigmas", "must decrease step by step (entry " + std::to_string(i) + ")");
    }
    for (int b = 0; b < 2; ++b) {
        const char* key = b == 0 ? "cond" : "uncond";
        if (r.ratios[b].size() != n)
            fail(key, "must list one ratio per sigma (" + std::to_string(n) + "), got " + std::to_string(r.ratios[b].size()));
        for (double v : r.ratios[b])
            if (!std::isfinite(v) || v <= 0) fail(key, "ratios must be finite and > 0, got " + std::to_string(v));
    }
}

// Log magnitude at each calibrated sigma.
std::vector<double> log_magnitude(const std::vector<double>& ratios) {
    std::vector<double> m(ratios.size(), 0.0);
    for (size_t i = 1; i < ratios.size(); ++i) m[i] = m[i - 1] + std::log(ratios[i]);
    return m;
}

double interpolate(const std::vector<double>& sigmas, const std::vector<double>& m, double s) {
    // sigmas decrease; pick the segment [i, i+1] containing s (the first or last one beyond the ends).
    size_t i = 0;
    while (i + 2 < sigmas.size() && s < sigmas[i + 1]) ++i;
    const double w = (s - sigmas[i]) / (sigmas[i + 1] - sigmas[i]);
    return m[i] + w * (m[i + 1] - m[i]);
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& magcache_preset_variants() {
    static const std::vector<std::pair<std::string, std::string>> v = [] {
        std::vector<std::pair<std::string, std::string>> out;
        for (const auto& p : presets()) out.emplace_back(p.name, p.variant);
        return out;
    }();
    return v;
}

MagRatios magcache_preset(const std::string& name) {
    for (const auto& p : presets()) {
        if (name != p.name) continue;
        MagRatios r;
        r.name   = p.name;
        r.blocks = p.blocks;
        const auto s = sampling::unipc_schedule(int(p.ratios[0].size()), 5.0).sigmas;  // N + 1, the last 0
        r.sigmas.assign(s.begin(), s.end() - 1);
        r.ratios[0] = p.ratios[0];
        r.ratios[1] = p.ratios[1];
        return r;
    }
    throw std::logic_error("no MagCache preset '" + name + "'");
}

MagRatios load_magcache_file(const std::string& path) {
    io::Options o(io::load_yaml_file(path, "MagCache ratio file", "with blocks, sigmas, cond and uncond"), "magcache ratios", path);
    MagRatios   r;
    r.name = std::filesystem::path(path).stem().string();
    for (const char* k : {"blocks", "sigmas", "cond", "uncond"})
        if (!o.has(k)) o.fail(k, "is required");
    r.blocks    = o.get_int("blocks", 0, 1, 100000);
    r.sigmas    = o.get_double_list("sigmas");
    r.ratios[0] = o.get_double_list("cond");
    r.ratios[1] = o.get_double_list("uncond");
    r.measured_on = measured_on(o.get_node("source"));
    o.finish();
    check_ratios(r, [&](const std::string& k, const std::string& what) { o.fail(k, what); });
    return r;
}

std::string magcache_file_text(const MagRatios& r, const YAML::Node& source) {
    YAML::Emitter e;
    e.SetDoublePrecision(10);
    e << YAML::BeginMap;
    e << YAML::Key << "blocks" << YAML::Value << r.blocks;
    e << YAML::Key << "sigmas" << YAML::Value << YAML::Flow << r.sigmas;
    e << YAML::Key << "cond" << YAML::Value << YAML::Flow << r.ratios[0];
    e << YAML::Key << "uncond" << YAML::Value << YAML::Flow << r.ratios[1];
    if (source) e << YAML::Key << "source" << YAML::Value << YAML::Flow << source;
    e << YAML::EndMap;
    return "# written by profdit calibrate magcache\n" + std::string(e.c_str()) + "\n";
}

double magcache_ratio(const MagRatios& r, int branch, double sigma_from, double sigma_to) {
    const auto m = log_magnitude(r.ratios[branch]);
    return std::exp(interpolate(r.sigmas, m, sigma_to) - interpolate(r.sigmas, m, sigma_from));
}

MagCachePolicy::MagCachePolicy(const ModelFacts& facts, MagRatios ratios, double threshold, int max_skip, double retention)
    : blocks_(facts.num_blocks), r_(std::move(ratios)), threshold_(threshold), retention_(retention), max_skip_(max_skip) {}

std::string MagCachePolicy::tag() const {
    return "magcache-thr" + tag_number(threshold_) + "-K" + std::to_string(max_skip_) + "-r" + tag_number(retention_) + "-" + r_.name;
}

void MagCachePolicy::reset() {
    for (int b = 0; b < 2; ++b) acc_ratio_[b] = 1, acc_err_[b] = 0, acc_steps_[b] = 0, prev_sigma_[b] = 0;
}

CallPlan MagCachePolicy::plan(const CallInfo& call) {
    if (std::isnan(call.sigma)) throw std::logic_error("magcache needs the schedule's sigmas (CachedDenoiser::begin)");
    const int b = call.branch;
    const int calls = 2 * call.steps;  // the reference counts cond and uncond calls: cnt = 2 step + branch
    bool reuse = false;
    if (2 * call.step + b >= int(calls * retention_)) {
        // no ratios only with threshold 0, where err < threshold never holds
        const double r = call.step == 0 || r_.sigmas.empty() ? 1.0 : magcache_ratio(r_, b, prev_sigma_[b], call.sigma);
        acc_ratio_[b] *= r;
        acc_steps_[b] += 1;
        acc_err_[b] += std::abs(1 - acc_ratio_[b]);
        if (acc_err_[b] < threshold_ && acc_steps_[b] <= max_skip_) {
            reuse = true;
        } else {
            acc_err_[b] = 0, acc_steps_[b] = 0, acc_ratio_[b] = 1;
        }
    }
    prev_sigma_[b] = call.sigma;
    return {false, {reuse}};
}

YAML::Node MagCachePolicy::params() const {
    YAML::Node n;
    n["threshold"]       = threshold_;
    n["max_skip_steps"]  = max_skip_;
    n["retention_ratio"] = retention_;
    n["ratios"]          = r_.name;
    return n;
}

std::unique_ptr<CachePolicy> make_magcache(io::Options& opts, const ModelFacts& facts) {
    // magcache_generate.py's argument defaults: --magcache_thresh 0.12, --magcache_K 2, --retention_ratio 0.2
    const double threshold = opts.get_double("threshold", 0.12, 0.0, 1e9);
    const int    max_skip  = opts.get_int("max_skip_steps", 2, 0, 100000);
    const double retention = opts.get_double("retention_ratio", 0.2, 0.0, 1.0);
    const std::string want = opts.get_string("ratios", "auto");
    std::string names;
    std::string chosen;
    for (const auto& [n, variant] : magcache_preset_variants()) {
        names += (names.empty() ? "" : ", ") + n;
        if (want == n || (want == "auto" && variant == facts.variant)) chosen = n;
    }
    MagRatios r;
    const auto ext = std::filesystem::path(want).extension().string();
    if (chosen.empty() && (ext == ".yaml" || ext == ".yml" || std::filesystem::is_regular_file(want))) {
        if (!std::filesystem::is_regular_file(want)) opts.fail("ratios", "names the file '" + want + "', which does not exist");
        r = load_magcache_file(want);
        check_measured_on(opts, "ratios", want, r.measured_on, facts);
    } else if (!chosen.empty()) {
        r = magcache_preset(chosen);
    } else if (want == "auto" && threshold == 0) {
        r.name   = "unused";  // threshold 0 never reuses, so the rule never reads a ratio
        r.blocks = facts.num_blocks;
    } else if (want == "auto") {
        opts.fail("ratios", "is 'auto' but the model variant '" + facts.variant + "' has no published ratios; give a preset (" + names +
                                ") or a file from 'profdit calibrate magcache'");
    } else {
        opts.fail("ratios", "must be auto, a preset (" + names + ") or a ratio file (.yaml), got '" + want + "'");
    }
    if (r.blocks != facts.num_blocks)
        opts.fail("ratios", "'" + want + "' holds ratios of a " + std::to_string(r.blocks) + "-block model, but the model has " +
                                std::to_string(facts.num_blocks) + " blocks");
    opts.finish();
    return std::make_unique<MagCachePolicy>(facts, std::move(r), threshold, max_skip, retention);
}

}  // namespace profdit::policies
