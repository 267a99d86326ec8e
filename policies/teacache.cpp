#include "policies/teacache.h"

#include <cmath>
#include <filesystem>
#include <optional>

#include "common/error.h"

namespace profdit::policies {

const std::vector<TeaCachePreset>& teacache_presets() {
    // ali-vilab/TeaCache, TeaCache4Wan2.1/teacache_generate.py (see docs/policies.md).
    static const std::vector<TeaCachePreset> p = {
        {"wan2.1-t2v-1.3b", "Wan2.1-T2V-1.3B", {2.39676752e+03, -1.31110545e+03, 2.01331979e+02, -8.29855975e+00, 1.37887774e-01}, "e", 1, 1},
        {"wan2.1-t2v-1.3b-ret", "Wan2.1-T2V-1.3B", {-5.21862437e+04, 9.23041404e+03, -5.28275948e+02, 1.36987616e+01, -4.99875664e-02}, "e0", 5, 0},
        {"wan2.1-t2v-14b", "Wan2.1-T2V-14B", {-5784.54975374, 5449.50911966, -1811.16591783, 256.27178429, -13.02252404}, "e", 1, 1},
        {"wan2.1-t2v-14b-ret", "Wan2.1-T2V-14B", {-3.03318725e+05, 4.90537029e+04, -2.65530556e+03, 5.87365115e+01, -3.15583525e-01}, "e0", 5, 0},
        {"wan2.1-i2v-480p", "Wan2.1-I2V-14B", {-3.02331670e+02, 2.23948934e+02, -5.25463970e+01, 5.87348440e+00, -2.01973289e-01}, "e", 1, 1},
        {"wan2.1-i2v-480p-ret", "Wan2.1-I2V-14B", {2.57151496e+05, -3.54229917e+04, 1.40286849e+03, -1.35890334e+01, 1.32517977e-01}, "e0", 5, 0},
        {"wan2.1-i2v-720p", "Wan2.1-I2V-14B", {-114.36346466, 65.26524496, -18.82220707, 4.91518089, -0.23412683}, "e", 1, 1},
        {"wan2.1-i2v-720p-ret", "Wan2.1-I2V-14B", {8.10705460e+03, 2.13393892e+03, -3.72934672e+02, 1.66203073e+01, -4.17769401e-02}, "e0", 5, 0},
    };
    return p;
}

TeaCacheFile load_teacache_file(const std::string& path) {
    io::Options  o(io::load_yaml_file(path, "TeaCache coefficient file", "with coefficients"), "teacache coefficients", path);
    TeaCacheFile f;
    f.name = std::filesystem::path(path).stem().string();
    if (!o.has("coefficients")) o.fail("coefficients", "is required");
    const auto c = o.get_double_list("coefficients");
    if (c.size() != 5) o.fail("coefficients", "must list 5 numbers (4th-order polynomial, highest first), got " + std::to_string(c.size()));
    std::copy(c.begin(), c.end(), f.coefficients.begin());
    f.indicator  = o.get_choice("indicator", f.indicator, teacache_indicator_names());
    f.ret_steps  = o.get_int("ret_steps", f.ret_steps, 0, 100000);
    f.final_full = o.get_int("final_full", f.final_full, 0, 100000);
    o.get_node("r2");
    f.measured_on = measured_on(o.get_node("source"));
    o.finish();
    return f;
}

TeaCachePolicy::TeaCachePolicy(const ModelFacts& facts, double threshold, std::array<double, 5> coefficients,
                               std::string coeff_name, std::string indicator, int ret_steps, int final_full)
    : blocks_(facts.num_blocks), threshold_(threshold), coeff_(coefficients), coeff_name_(std::move(coeff_name)),
      indicator_(std::move(indicator)), ret_steps_(ret_steps), final_full_(final_full) {}

std::string TeaCachePolicy::tag() const {
    return "teacache-thr" + tag_number(threshold_) + "-" + indicator_ + "-" + coeff_name_ + "-r" + std::to_string(ret_steps_) +
           "-f" + std::to_string(final_full_);
}

double TeaCachePolicy::rescale(double x) const {
    double y = 0;
    for (double c : coeff_) y = y * x + c;
    return y;
}

void TeaCachePolicy::reset() {
    acc_[0] = acc_[1] = 0;
}

CallPlan TeaCachePolicy::plan(const CallInfo& call) {
    const int    b      = call.branch;
    const double change = call.indicators->indicator_change(indicator_);  // asked at every call: the executor's reference moves on
    bool compute = true;
    if (call.step < ret_steps_ || call.step >= call.steps - final_full_ || std::isnan(change)) {
        acc_[b] = 0;
    } else {
        acc_[b] += rescale(change);
        if (acc_[b] < threshold_) compute = false;
        else acc_[b] = 0;
    }
    return {false, {!compute}};
}

YAML::Node TeaCachePolicy::params() const {
    YAML::Node n;
    n["threshold"]    = threshold_;
    n["coefficients"] = std::vector<double>(coeff_.begin(), coeff_.end());
    n["coefficients_name"] = coeff_name_;
    n["indicator"]    = indicator_;
    n["ret_steps"]    = ret_steps_;
    n["final_full"]   = final_full_;
    return n;
}

std::unique_ptr<CachePolicy> make_teacache(io::Options& opts, const ModelFacts& facts) {
    const double threshold = opts.get_double("threshold", 0.08, 0.0, 1e9);
    std::array<double, 5> coeff{};
    std::string name;
    const TeaCachePreset* preset = nullptr;
    std::optional<TeaCacheFile> file;
    YAML::Node c = opts.get_node("coefficients");
    auto names_file = [](const std::string& s) {
        const auto ext = std::filesystem::path(s).extension().string();
        if (ext == ".yaml" || ext == ".yml") return true;
        for (const auto& p : teacache_presets())
            if (p.name == s) return false;
        return s != "auto" && std::filesystem::is_regular_file(s);
    };
    if (c && c.IsScalar() && names_file(c.Scalar())) {
        if (!std::filesystem::is_regular_file(c.Scalar())) opts.fail("coefficients", "names the file '" + c.Scalar() + "', which does not exist");
        file  = load_teacache_file(c.Scalar());
        check_measured_on(opts, "coefficients", c.Scalar(), file->measured_on, facts);
        coeff = file->coefficients;
        name  = file->name;
    } else if (c && c.IsSequence()) {
        auto v = opts.get_double_list("coefficients");
        if (v.size() != 5) opts.fail("coefficients", "must list 5 numbers (4th-order polynomial, highest first), got " + std::to_string(v.size()));
        std::copy(v.begin(), v.end(), coeff.begin());
        name = "custom";
    } else {
        const std::string want = c ? c.Scalar() : "auto";
        std::string names;
        for (const auto& p : teacache_presets()) {
            names += (names.empty() ? "" : ", ") + p.name;
            if (want == p.name || (want == "auto" && p.variant == facts.variant && p.name.find("-ret") == std::string::npos &&
                                   p.name.find("720p") == std::string::npos))
                preset = &p;
        }
        if (!preset && want == "auto")
            opts.fail("coefficients", "is 'auto' but the model variant '" + facts.variant +
                                          "' has no published set; give a preset (" + names + ") or 5 numbers");
        if (!preset) opts.fail("coefficients", "must be auto, a preset (" + names + ") or a list of 5 numbers, got '" + want + "'");
        coeff = preset->coefficients;
        name  = preset->name;
    }
    const std::string indicator = opts.get_choice("indicator", file ? file->indicator : preset ? preset->indicator : "e",
                                                  teacache_indicator_names());
    const int ret_steps  = opts.get_int("ret_steps", file ? file->ret_steps : preset ? preset->ret_steps : 1, 0, 100000);
    const int final_full = opts.get_int("final_full", file ? file->final_full : preset ? preset->final_full : 1, 0, 100000);
    opts.finish();
    return std::make_unique<TeaCachePolicy>(facts, threshold, coeff, name, indicator, ret_steps, final_full);
}

}  // namespace profdit::policies
