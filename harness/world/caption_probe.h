#pragma once

#include <vector>

#include "world/embedded_model.h"

namespace profdit::world {

// How much a model's denoising loss depends on each part of its caption, per noise level: on held-out
// pairs the rendered video is noised to sigma, and the conditional velocity loss with the true caption is
// compared with the loss when one caption word is changed (direction reversed, another sprite colour,
// another background colour) and with the empty caption. A model that uses a word pays for changing it.
// gap_shuffled keeps the true caption but puts the frames of x_t (and of the target) in a fixed scrambled
// order (frame j holds frame (k j) mod F, k the smallest stride >= 2 coprime to F and below F - 1): what the
// model gains from the order of frames, i.e. from following the sprite's track; NaN when F has no such stride.
struct CaptionProbeRow {
    double sigma = 0, loss_true = 0;
    double gap_direction = 0, gap_colour = 0, gap_background = 0, gap_empty = 0;  // mean (loss_changed - loss_true) / loss_true
    double gap_shuffled = 0;
};
std::vector<CaptionProbeRow> probe_captions(EmbeddedModel& m, int pairs, const std::vector<double>& sigmas);

}  // namespace profdit::world
