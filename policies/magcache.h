#pragma once

#include "io/yaml_options.h"
#include "policies/policy.h"

namespace profdit::policies {

// Magnitude ratios r_s = mean over tokens of |res_s| / |res_{s-1}| (res: the whole block stack's residual,
// norms over dim) per step and CFG branch, with the sigma of each step of the schedule they were measured on.
// Step 0 has no previous residual: r_0 = 1.
struct MagRatios {
    std::string         name;    // preset name or the file's stem
    int                 blocks = 0;
    std::vector<double> sigmas;  // [N] decreasing
    std::vector<double> ratios[2];  // [N] per branch (0 cond, 1 uncond)
    std::string         measured_on;  // a ratio file's source.model, or ""
};

// Zehong-Ma/MagCache, MagCache4Wan2.1/magcache_generate.py: the published T2V ratios (50 steps, UniPC,
// shift 5, the reference's defaults), with the sigmas of that schedule.
const std::vector<std::pair<std::string, std::string>>& magcache_preset_variants();  // (preset, variant)
MagRatios magcache_preset(const std::string& name);
// A ratio file written by `profdit calibrate magcache` (blocks, sigmas, cond, uncond; source is provenance).
MagRatios load_magcache_file(const std::string& path);
std::string magcache_file_text(const MagRatios& r, const YAML::Node& source);  // what calibrate writes

// The ratio between the residual magnitudes at sigma_to and sigma_from: exp(M(sigma_to) - M(sigma_from)) with
// M the log magnitude, sum of log r up to each calibrated sigma, linear in sigma between (and beyond) them.
// On the calibration schedule it returns the calibrated ratios; on another step count the ratio over the
// same stretch of the noise schedule.
double magcache_ratio(const MagRatios& r, int branch, double sigma_from, double sigma_to);

// MagCache: the whole stack is one cacheable segment. Per branch, after the first retention_ratio of the
// calls: ratio *= r_s, err += |1 - ratio|, skipped += 1; reuse while err < threshold and skipped <= K,
// otherwise compute and reset (ratio 1, err 0, skipped 0).
class MagCachePolicy : public CachePolicy {
  public:
    MagCachePolicy(const ModelFacts& facts, MagRatios ratios, double threshold, int max_skip, double retention);
    std::string          name() const override { return "magcache"; }
    std::string          tag() const override;
    std::vector<Segment> segments() const override { return {{0, blocks_ - 1, true}}; }
    CallPlan             plan(const CallInfo& call) override;
    void                 reset() override;
    YAML::Node           params() const override;

  private:
    int       blocks_;
    MagRatios r_;
    double    threshold_, retention_;
    int       max_skip_;
    double    acc_ratio_[2] = {1, 1}, acc_err_[2] = {0, 0};
    int       acc_steps_[2] = {0, 0};
    double    prev_sigma_[2] = {0, 0};
};

std::unique_ptr<CachePolicy> make_magcache(io::Options& opts, const ModelFacts& facts);

}  // namespace profdit::policies
