#include "run/run_metrics.h"

#include <algorithm>

#include "metrics/flicker.h"
#include "metrics/psnr.h"
#include "metrics/ssim.h"
#include "run/run_record.h"

namespace profdit::run {

RunMetrics::RunMetrics(const std::vector<MetricSpec>& specs) : specs_(specs) {
    for (const auto& m : specs_)
        if (m.name == "lpips") lpips_ = metrics::Lpips::load(m.weights, m.spatial);
}

bool RunMetrics::wants(const std::string& name) const {
    return std::any_of(specs_.begin(), specs_.end(), [&](const MetricSpec& m) { return m.name == name; });
}

void RunMetrics::add(store::Record& r, const torch::Tensor& frames, const torch::Tensor& ref, const torch::Tensor& mask) const {
    auto put = [&](const metrics::Series& s) {
        r.datasets["metrics/" + s.name] = {series_tensor(s.per_frame, {int64_t(s.per_frame.size())}), {{"mean", s.mean}}, {{"note", s.note}}, false};
    };
    std::optional<metrics::Series> ms;  // shared by ms_ssim and lpips_proxy
    auto ms_ssim = [&]() -> const metrics::Series& {
        if (!ms) ms = metrics::ms_ssim(frames, ref), ++ms_ssim_evaluations_;
        return *ms;
    };
    for (const auto& m : specs_) {
        if (m.name == "psnr") put(metrics::psnr(frames, ref));
        else if (m.name == "ssim") put(metrics::ssim(frames, ref));
        else if (m.name == "ms_ssim") put(ms_ssim());
        else if (m.name == "lpips_proxy") put(metrics::lpips_proxy_from(ms_ssim()));
        else if (m.name == "lpips") put((*lpips_)(frames, ref));
        else if (m.name == "flicker") put(metrics::flicker(frames, ref));
        else if (m.name == "region") {
            auto [fg, bg] = metrics::region_psnr(frames, ref, mask);
            put(fg), put(bg);
        }
    }
}

}  // namespace profdit::run
