#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

// Foreground mask sources for the profiler (docs/profiling.md, "Foreground mask sources"): masks from an
// external segmenter's file, a weight-free stand-in for ProfilingDiT's PCA + SAM2, and the mapping of a
// video-resolution mask onto the DiT's latent grid.
namespace profdit::profile {

// Video mask uint8 [F, H, W] (nonzero = foreground) -> latent grid uint8 [F_lat, H_lat, W_lat] (0/1).
// Latent frame 0 <- video frame 0, latent frame k >= 1 <- video frames s(k-1)+1 .. sk (s = temporal_stride;
// Wan2.1's VAE: s = 4, F = 1 + 4 (F_lat - 1)); s = 1 needs F == F_lat. Each video frame is area-averaged onto
// the H_lat x W_lat grid (exact overlap weights, any size ratio), the shares are averaged over the latent
// frame's video frames, and a cell is foreground where that mean is >= 0.5.
torch::Tensor resize_mask(const torch::Tensor& mask, int64_t F_lat, int64_t H_lat, int64_t W_lat,
                          int64_t temporal_stride = 1);

// Masks from a file, returned uint8 [F, H, W] (0/1). `spec`:
//   FILE.h5 / FILE.hdf5 [:DATASET]  dataset (default "masks") [F, H, W], [F, 1, H, W] or [H, W] (all frames);
//                                   any integer, float or bool (enum) type; > 0.5 = foreground
//   FILE.png                        one mask for all frames
//   DIR                             its *.png files sorted by name, one per frame
//   PATTERN with a printf %d field  e.g. masks/frame_%03d.png: frames start, ..., start + F - 1, where start
//                                   is 0 if that file exists, else 1; the file for start + F must not exist
// PNG: nonzero in any colour channel = foreground (alpha ignored); needs OpenCV. A mask of another
// resolution than H x W is area-resized (as resize_mask). Any problem -> InputError naming the file,
// dataset or frame and the value.
torch::Tensor load_mask_file(const std::string& spec, int64_t F, int64_t H, int64_t W);

// The weight-free stand-in for ProfilingDiT's "PCA of the predicted noise to 3 channels, then SAM2"
// (docs/profiling.md has the steps and their measured effect):
//  1. average the predictions; PCA of the per-pixel C-vectors (all frames pooled) to min(3, C) components
//  2. box-blur the PCA features per frame (radius `blur`; adaptive by default, see 4)
//  3. background model: the features on each frame side (top, bottom, left, right; all frames); per side the
//     distance to the k-th nearest side feature (k = knn_share x samples); score = the `sides`-th smallest
//  4. Otsu threshold on the scores, moved to the midpoint of the two class means; contrast = foreground class
//     mean / median score. Adaptive blur: the smallest radius 0..max_blur whose contrast reaches
//     `sharp_contrast`, else the one of highest contrast. No foreground below `min_contrast`.
//  5. grow back up to `blur` rings of neighbours scoring above background + grow x (threshold - background)
//  6. optional: per frame 3x3 opening then closing; majority over frames f-1, f, f+1
//  7. per frame keep the largest 4-connected components (by score mass) until they hold `keep_mass` of it
struct AutoMaskOptions {
    int    blur           = -1;   // box radius in pixels; -1 = adaptive
    int    max_blur       = 2;
    double sharp_contrast = 4.0;
    double min_contrast   = 2.5;  // 0 = always some foreground
    int    border         = 1;    // side width in pixels
    int    max_samples    = 256;  // border features kept, a quarter per side (golden-ratio stride)
    double knn_share      = 0.1;  // k as a share of a side's samples
    int    sides          = 2;    // a background feature shows on at least this many of the 4 frame sides
    double grow           = 0.8;  // 1 = off
    bool   morphology     = false;
    bool   temporal       = false;
    double keep_mass      = 0.9;
};

struct AutoMaskInfo {
    int64_t components   = 0;  // PCA components used
    int     blur         = 0;  // box radius used
    double  threshold    = 0;  // on the score
    double  separability = 0;  // Otsu's eta in [0, 1]
    double  contrast     = 0;  // foreground class mean / median score
    double  foreground   = 0;  // share of foreground pixels in the result
};

// pred f32 [C, F, H, W] (one step, or already averaged over steps) -> uint8 [F, H, W] on the same grid.
torch::Tensor auto_mask(const torch::Tensor& pred, const AutoMaskOptions& opt = {}, AutoMaskInfo* info = nullptr);
// Several steps' predictions, each [C, F, H, W], averaged first.
torch::Tensor auto_mask(const std::vector<torch::Tensor>& preds, const AutoMaskOptions& opt = {},
                        AutoMaskInfo* info = nullptr);

}  // namespace profdit::profile
