// The shipped embedded model's quality gates (issue 16 point 5): on held-out (caption, seed) pairs, sampled at the
// model's own settings (config.json's "sampling": 50 UniPC steps, shift 3, guidance 1.5), the strict detector finds
// the sprite, the background, the direction and all three often enough; and the direction word, not the noise, sets
// the motion. Each test samples its videos in full (16 and 32 videos of 50 CFG steps: about 1.5 and 3 minutes).
#include <iostream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "test_util.h"
#include "world/embedded_model.h"

using namespace profdit;

namespace {

world::EmbeddedModel shipped_model() {
    torch::set_num_threads(1);
    return world::EmbeddedModel::load(test::data_path("../../data/models/sprites-tiny"));
}

}  // namespace

TEST(ShippedModel, PassesTheQualityGatesOnSixteenHeldOutPairs) {
    auto       m = shipped_model();
    const auto r = world::evaluate_gates(m, 16, m.sampling);
    ASSERT_EQ(r.videos, 16);
    EXPECT_GE(r.sprite, 0.8);
    EXPECT_GE(r.background, 0.9);
    EXPECT_GE(r.direction, 0.7);
    EXPECT_GE(r.all, 0.6);
    std::cerr << "16 pairs: sprite " << r.sprite << ", background " << r.background << ", direction " << r.direction << ", all "
              << r.all << ", shape " << r.shape << ", size error " << r.size_error << " px\n";
}

TEST(ShippedModel, TheDirectionWordSetsTheMotionForEightSeeds) {
    auto       m = shipped_model();
    const auto c = world::evaluate_controllability(m, 8, m.sampling);
    ASSERT_EQ(c.motion.size(), 8u);
    ASSERT_EQ(c.words.size(), 4u);
    EXPECT_GE(c.rate(), 0.7);
    EXPECT_EQ(c.seeds_ignoring_word(), 0);
    std::cerr << "32 videos: captioned direction " << c.rate() << "\n";
}
