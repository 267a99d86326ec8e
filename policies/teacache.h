#pragma once

#include <array>

#include "io/yaml_options.h"
#include "policies/policy.h"

namespace profdit::policies {

// TeaCache4Wan2.1's published polynomial coefficients (highest order first) and the settings that go
// with them: the plain sets use indicator e, 1 forced step at the start and 1 at the end; the "-ret"
// sets (--use_ret_steps) use e0, 5 forced steps at the start and none at the end.
struct TeaCachePreset {
    std::string           name;       // e.g. "wan2.1-t2v-1.3b", "wan2.1-t2v-1.3b-ret"
    std::string           variant;    // WanConfig::variant() it belongs to
    std::array<double, 5> coefficients;
    std::string           indicator;  // e | e0
    int                   ret_steps;
    int                   final_full;
};
const std::vector<TeaCachePreset>& teacache_presets();

// A coefficient file written by `profdit calibrate teacache` (docs/policies.md): coefficients, indicator,
// ret_steps, final_full; r2 and source are informative. InputError naming the file and key.
struct TeaCacheFile {
    std::string           name;  // the file's stem
    std::array<double, 5> coefficients{};
    std::string           indicator = "modulated_input";
    int                   ret_steps = 1, final_full = 1;
    std::string           measured_on;  // the file's source.model, or ""
};
TeaCacheFile load_teacache_file(const std::string& path);

// TeaCache: the whole stack is one cacheable segment. Per CFG branch, the relative L1 change of the
// indicator since the branch's previous call (a number the executor measures) is rescaled by the polynomial
// and accumulated; while the sum stays below `threshold` the call reuses the cached residual, otherwise it
// computes and resets. The first `ret_steps` and last `final_full` steps always compute (and reset).
class TeaCachePolicy : public CachePolicy {
  public:
    TeaCachePolicy(const ModelFacts& facts, double threshold, std::array<double, 5> coefficients, std::string coeff_name,
                   std::string indicator, int ret_steps, int final_full);
    std::string          name() const override { return "teacache"; }
    std::string          tag() const override;
    std::vector<Segment> segments() const override { return {{0, blocks_ - 1, true}}; }
    CallPlan             plan(const CallInfo& call) override;
    void                 reset() override;
    YAML::Node           params() const override;

    double rescale(double rel_l1) const;  // the 4th-order polynomial

  private:
    int                   blocks_;
    double                threshold_;
    std::array<double, 5> coeff_;
    std::string           coeff_name_, indicator_;
    int                   ret_steps_, final_full_;
    double                acc_[2] = {0, 0};
};

std::unique_ptr<CachePolicy> make_teacache(io::Options& opts, const ModelFacts& facts);

}  // namespace profdit::policies
