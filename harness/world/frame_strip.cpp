#include "world/frame_strip.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "common/error.h"

namespace profdit::world {

void write_frame_strip(const std::string& path, const std::vector<torch::Tensor>& videos, int zoom) {
    if (videos.empty()) input_error(path + ": no videos to write");
    const int F = int(videos[0].size(0)), H = int(videos[0].size(2)), W = int(videos[0].size(3)), gap = 2;
    cv::Mat canvas(int(videos.size()) * (H * zoom + gap), F * (W * zoom + gap), CV_8UC3, cv::Scalar(255, 255, 255));
    for (size_t v = 0; v < videos.size(); ++v) {
        auto u8 = ((videos[v].clamp(-1, 1) + 1) * 127.5).round().to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();  // [F, H, W, 3] RGB
        for (int f = 0; f < F; ++f) {
            cv::Mat rgb(H, W, CV_8UC3, u8[f].data_ptr<uint8_t>()), bgr, big;
            cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
            cv::resize(bgr, big, cv::Size(W * zoom, H * zoom), 0, 0, cv::INTER_NEAREST);
            big.copyTo(canvas(cv::Rect(f * (W * zoom + gap), int(v) * (H * zoom + gap), W * zoom, H * zoom)));
        }
    }
    if (!cv::imwrite(path, canvas)) input_error(path + ": cannot write PNG");
}

}  // namespace profdit::world
