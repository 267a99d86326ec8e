// The embedded model's video world and the STRICT caption detector (issue 4 groundwork): rendered
// ground-truth videos pass, noise and wrong captions fail, detected masks match the true ones.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <random>
#include <sstream>

#include <gtest/gtest.h>
#ifdef PROFDIT_HAVE_OPENCV
#include <opencv2/imgcodecs.hpp>
#endif

#include "common/draw.h"
#include "common/error.h"
#include "test_util.h"
#include "world/caption_probe.h"
#include "world/detector.h"
#include "world/embedded_model.h"
#include "world/world.h"

using namespace profdit;
using namespace profdit::world;

namespace {

// The cell of `column` in the first row of a markdown table (header, rule, rows), trimmed; "" when absent.
std::string markdown_cell(const std::string& table, const std::string& column) {
    auto cells = [](const std::string& line) {
        std::vector<std::string> out;
        for (size_t a = line.find('|'), b; a != std::string::npos && (b = line.find('|', a + 1)) != std::string::npos; a = b) {
            auto c = line.substr(a + 1, b - a - 1);
            c.erase(0, c.find_first_not_of(' '));
            c.erase(c.find_last_not_of(' ') + 1);
            out.push_back(c);
        }
        return out;
    };
    std::istringstream       is(table);
    std::string              head, rule, row;
    std::getline(is, head), std::getline(is, rule), std::getline(is, row);
    const auto names = cells(head), values = cells(row);
    for (size_t i = 0; i < names.size() && i < values.size(); ++i)
        if (names[i] == column) return values[i];
    return "";
}

}  // namespace

TEST(World, CaptionsRoundTrip) {
    WorldConfig cfg;
    for (uint64_t seed = 0; seed < 50; ++seed) {
        const Scene s = sample_scene(cfg, seed);
        const auto  c = caption(s);
        const Scene p = parse_caption(c, cfg);
        EXPECT_EQ(caption(p), c);
        EXPECT_EQ(p.background, s.background);
        EXPECT_EQ(p.pattern, s.pattern);
    }
    EXPECT_EQ(caption(parse_caption("a red circle moving left over blue stripes", cfg)), "a red circle moving left over blue stripes");
    EXPECT_EQ(parse_caption("a white square moving up over a gray background", cfg).pattern, "solid");
}

// The opposite-direction negative prompt: the same caption with every sprite's direction reversed; Wan's CFG uses "".
TEST(World, NegativeCaptionReversesTheDirection) {
    WorldConfig cfg;
    EXPECT_EQ(world::negative_caption("a red circle moving left over blue stripes", world::NegativePrompt::opposite_direction, cfg),
              "a red circle moving right over blue stripes");
    EXPECT_EQ(world::negative_caption("a white square moving up over a gray background", world::NegativePrompt::opposite_direction, cfg),
              "a white square moving down over a gray background");
    EXPECT_EQ(world::negative_caption("a red circle moving left over blue stripes", world::NegativePrompt::empty, cfg), "");
    EXPECT_EQ(world::negative_prompt_named("opposite", "x"), world::NegativePrompt::opposite_direction);
    EXPECT_EQ(world::opposite_direction("down"), "up");
    try {  // a world whose config lists another direction word has no opposite for it
        world::opposite_direction("still");
        ADD_FAILURE() << "'still' was given an opposite";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("direction 'still' has no opposite"), std::string::npos) << e.what();
    }
    try {
        world::negative_prompt_named("reversed", "--negative");
        ADD_FAILURE() << "an unknown negative prompt was accepted";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("--negative: unknown negative prompt 'reversed' (accepted: empty, opposite)"), std::string::npos) << e.what();
    }
}

TEST(World, BadCaptionsNameTheWord) {
    WorldConfig cfg;
    auto msg = [&](const std::string& c) {
        try {
            parse_caption(c, cfg);
        } catch (const InputError& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    EXPECT_NE(msg("a purple circle moving left over blue stripes").find("word 2 'purple' is not a sprite colour"), std::string::npos);
    EXPECT_NE(msg("a red circle moving sideways over blue stripes").find("'sideways' is not a direction"), std::string::npos);
    EXPECT_NE(msg("a red circle moving left over blue").find("expected 'a COLOUR background' or 'COLOUR stripes'"), std::string::npos);
    EXPECT_NE(msg("a red circle moving left over pink stripes").find("'pink' is not in the world"), std::string::npos);
}

TEST(World, RenderIsDeterministicAndInView) {
    WorldConfig cfg;
    for (uint64_t seed = 0; seed < 100; ++seed) {
        const Scene s = sample_scene(cfg, seed);
        auto a = render(s, cfg), b = render(sample_scene(cfg, seed), cfg);
        EXPECT_TRUE(torch::equal(a.frames, b.frames));
        EXPECT_EQ(a.frames.sizes(), (torch::IntArrayRef{8, 3, 32, 32}));
        EXPECT_LE(a.frames.max().item<float>(), 1.0f);
        EXPECT_GE(a.frames.min().item<float>(), -1.0f);
        auto area = a.masks.sum({1, 2});  // the sprite never leaves the frame: same area in every frame
        EXPECT_EQ(area.min().item<int64_t>(), area.max().item<int64_t>()) << caption(s);
        EXPECT_GT(area.min().item<int64_t>(), 50);
    }
}

// The border option (issue 16: an absolute-position cue for a model whose attention only knows relative
// positions): a fixed dark frame in every frame, never foreground, and every sprite track stays inside it.
TEST(World, BorderFramesTheCanvasAndSpritesStayInsideIt) {
    WorldConfig cfg;
    cfg.border = 2;
    for (uint64_t seed = 0; seed < 100; ++seed) {
        const Scene s = sample_scene(cfg, seed);
        const auto  v = render(s, cfg);
        auto inner = torch::zeros({32, 32}, torch::kBool);  // [H, W]
        inner.narrow(0, 2, 28).narrow(1, 2, 28).fill_(true);
        const auto frame = v.frames.masked_select(inner.logical_not().view({1, 1, 32, 32}).expand_as(v.frames));
        EXPECT_TRUE(frame.eq(-0.95f).all().item<bool>()) << caption(s);
        EXPECT_EQ(v.masks.masked_select(inner.logical_not().expand_as(v.masks)).sum().item<int64_t>(), 0) << caption(s);
        auto area = v.masks.sum({1, 2});  // whole sprite inside the border in every frame
        EXPECT_EQ(area.min().item<int64_t>(), area.max().item<int64_t>()) << caption(s);
        EXPECT_EQ(in_border(cfg, 1, 20), true);
        EXPECT_EQ(in_border(cfg, 2, 29), false);
    }
    cfg.border = 5;  // 22 px left; a 10-12 px sprite moving 14 px needs 24-26
    EXPECT_THROW(sample_scene(cfg, 0), InputError);
}

// The wrap option (issue 16: on a bounded canvas where a sprite starts decides where it can go, so a model follows the
// noise that placed it, not the word): a torus. Every frame is the previous one shifted by the velocity, across the
// edges, so the sprite never loses a pixel, and starts are drawn over the whole canvas whatever the direction.
TEST(World, WrapMovesSpritesAcrossTheEdgesOfATorus) {
    WorldConfig cfg;
    cfg.wrap = cfg.heading = true;
    int crossed = 0;
    std::map<std::string, std::array<int, 2>> starts;  // per direction: starts in the left and the right half
    for (uint64_t seed = 0; seed < 200; ++seed) {
        const Scene s = sample_scene(cfg, seed);
        const auto  v = render(s, cfg);
        const auto& sp = s.sprites[0];
        const int   dx = sp.direction == "left" ? -2 : sp.direction == "right" ? 2 : 0, dy = sp.direction == "up" ? -2 : sp.direction == "down" ? 2 : 0;
        for (int f = 1; f < cfg.frames; ++f) {
            EXPECT_TRUE(torch::equal(v.masks[f], v.masks[f - 1].roll({dy, dx}, {0, 1}))) << caption(s) << " frame " << f;
            EXPECT_TRUE(torch::equal(v.frames[f], v.frames[f - 1].roll({dy, dx}, {1, 2})) || s.pattern == "stripes") << caption(s);
        }
        crossed += v.masks.select(2, 0).any().item<bool>() && v.masks.select(2, 31).any().item<bool>();
        ++starts[sp.direction][sp.x0 < 16 ? 0 : 1];
    }
    EXPECT_GT(crossed, 20);  // sprites on both edges at once: across the seam
    for (const auto& [dir, halves] : starts) EXPECT_TRUE(halves[0] > 5 && halves[1] > 5) << dir << ": " << halves[0] << " / " << halves[1];
    cfg.wrap = false;  // the bounded canvas: a leftward sprite starts in the right half, a rightward one in the left
    for (uint64_t seed = 0; seed < 100; ++seed) {
        const Scene s = sample_scene(cfg, seed);
        const auto& sp = s.sprites[0];
        EXPECT_TRUE(sp.direction != "left" || sp.x0 > 16) << caption(s) << " x0 " << sp.x0;
        EXPECT_TRUE(sp.direction != "right" || sp.x0 < 16) << caption(s) << " x0 " << sp.x0;
    }
}

// The heading option (issue 16: the direction visible in every frame, as a colour is, for a model that only
// knows relative positions): the front third of the sprite along its motion is magenta; nothing else changes.
TEST(World, HeadingPaintsTheFrontThirdOfEverySprite) {
    WorldConfig plain, cfg;
    cfg.heading     = true;
    const Rgb nose  = nose_rgb();
    auto      is_nose = [&](const torch::Tensor& frames) {  // [F, 3, H, W] -> [F, H, W]
        auto m = torch::ones({frames.size(0), frames.size(2), frames.size(3)}, torch::kBool);
        for (int c = 0; c < 3; ++c) m &= frames.select(1, c).eq(nose[c]);
        return m;
    };
    for (uint64_t seed = 0; seed < 60; ++seed) {
        const Scene s = sample_scene(cfg, seed);
        const auto  a = render(s, plain), b = render(s, cfg);
        EXPECT_TRUE(torch::equal(a.masks, b.masks)) << caption(s);
        const auto nose_px = is_nose(b.frames);
        EXPECT_FALSE(is_nose(a.frames).any().item<bool>()) << caption(s);
        EXPECT_TRUE(torch::equal(a.frames.masked_select(nose_px.logical_not().unsqueeze(1).expand_as(a.frames)),
                                 b.frames.masked_select(nose_px.logical_not().unsqueeze(1).expand_as(b.frames))))
            << caption(s);  // only nose pixels differ
        EXPECT_EQ(nose_px.logical_and(b.masks.to(torch::kBool).logical_not()).sum().item<int64_t>(), 0) << caption(s);
        const double share = nose_px.sum().item<double>() / b.masks.sum().item<double>();
        EXPECT_GT(share, 0.15) << caption(s);
        EXPECT_LT(share, 0.40) << caption(s);
        // the nose's centroid lies ahead of the sprite's along the captioned direction, in every frame
        const auto coords = [](const torch::Tensor& m) {  // [H, W] -> mean (x, y)
            auto idx = m.nonzero().to(torch::kFloat);      // [N, 2] (y, x)
            return std::array<double, 2>{idx.select(1, 1).mean().item<double>(), idx.select(1, 0).mean().item<double>()};
        };
        for (int f = 0; f < cfg.frames; ++f) {
            const auto n = coords(nose_px[f]), body = coords(b.masks[f]);
            const double ahead = s.sprites[0].direction == "left"    ? body[0] - n[0]
                                 : s.sprites[0].direction == "right" ? n[0] - body[0]
                                 : s.sprites[0].direction == "up"    ? body[1] - n[1]
                                                                     : n[1] - body[1];
            EXPECT_GT(ahead, 2.0) << caption(s) << " frame " << f;
        }
    }
}

TEST(Detector, PassesRenderedVideosWithTrueMasks) {
    for (int world : {0, 1, 2, 3}) {
        WorldConfig cfg;
        cfg.border  = world == 1 ? 2 : 0;
        cfg.heading = world >= 2;
        cfg.wrap    = world == 3;  // tracks across the torus's edges
        double      iou = 0;
        const int   n   = 200;
        for (uint64_t seed = 0; seed < n; ++seed) {
            const Scene s = sample_scene(cfg, 1000 + seed);
            const auto  v = render(s, cfg);
            const auto  d = detect(v.frames, caption(s), cfg);
            EXPECT_TRUE(d.sprite_present) << caption(s) << " seed " << seed << " frames " << d.frames_present;
            EXPECT_TRUE(d.direction_ok) << caption(s) << " seen " << d.direction_seen;
            EXPECT_TRUE(d.background_ok) << caption(s) << " seen " << d.background_seen << " " << d.pattern_seen;
            EXPECT_TRUE(d.shape_ok) << caption(s) << " seen " << d.shape_seen;
            EXPECT_EQ(d.size_error, 0.0) << caption(s) << " size " << d.size_seen;
            EXPECT_EQ(d.heading_ok, cfg.heading) << caption(s) << " heading seen " << d.heading_seen;
            EXPECT_EQ(d.heading_seen, cfg.heading ? s.sprites[0].direction : "") << caption(s);
            iou += mask_iou(d.mask, v.masks);
        }
        EXPECT_GT(iou / n, 0.99);
        std::cout << "gt mask source (detector blobs) vs true masks, border " << cfg.border << " heading " << cfg.heading << " wrap " << cfg.wrap << ": mean IoU " << iou / n << " over " << n
                  << " rendered videos\n";
    }
}

// A sprite that moves one way with its nose pointing the other (the video played backwards) moves as captioned
// but shows the wrong heading.
TEST(Detector, SeesANoseThatPointsAgainstTheMotion) {
    WorldConfig cfg;
    cfg.heading = true;
    for (uint64_t seed = 0; seed < 40; ++seed) {
        Scene s = sample_scene(cfg, seed);
        const auto backwards = render(s, cfg).frames.flip(0);  // [F, 3, H, W]
        const std::string went = s.sprites[0].direction == "left" ? "right" : s.sprites[0].direction == "right" ? "left"
                               : s.sprites[0].direction == "up"   ? "down"  : "up";
        const std::string nose = s.sprites[0].direction;
        s.sprites[0].direction = went;
        const auto d           = detect(backwards, caption(s), cfg);
        EXPECT_TRUE(d.direction_ok) << caption(s) << " seen " << d.direction_seen;
        EXPECT_FALSE(d.heading_ok) << caption(s);
        EXPECT_EQ(d.heading_seen, nose) << caption(s);
    }
}

TEST(Detector, FailsNoiseAndWrongCaptions) {
    WorldConfig cfg;
    torch::manual_seed(0);
    int noise_present = 0;
    for (int i = 0; i < 20; ++i) {
        auto noise = torch::randn({8, 3, 32, 32}).clamp(-1, 1);
        noise_present += detect(noise, "a red circle moving left over blue stripes", cfg).sprite_present;
    }
    EXPECT_EQ(noise_present, 0);

    const Scene s = parse_caption("a yellow square moving right over a green background", cfg);
    const auto  v = render(place_scene(s, cfg, 5), cfg);
    EXPECT_TRUE(detect(v.frames, "a yellow square moving right over a green background", cfg).all());
    EXPECT_FALSE(detect(v.frames, "a red square moving right over a green background", cfg).sprite_present);
    auto wrong_dir = detect(v.frames, "a yellow square moving left over a green background", cfg);
    EXPECT_TRUE(wrong_dir.sprite_present);
    EXPECT_FALSE(wrong_dir.direction_ok);
    EXPECT_FALSE(detect(v.frames, "a yellow square moving right over a blue background", cfg).background_ok);
    EXPECT_FALSE(detect(v.frames, "a yellow square moving right over green stripes", cfg).background_ok);
    const auto as_circle = detect(v.frames, "a yellow circle moving right over a green background", cfg);
    EXPECT_EQ(as_circle.shape_seen, "square");
    EXPECT_FALSE(as_circle.shape_ok);

    // A sprite smaller than the world's smallest is measured so (size error = sprite_min - side).
    WorldConfig big = cfg;
    big.sprite_min = big.sprite_max = 8;
    const auto small_world = render(place_scene(s, big, 5), big);
    const auto d_small     = detect(small_world.frames, "a yellow square moving right over a green background", cfg);
    EXPECT_TRUE(d_small.sprite_present);
    EXPECT_NEAR(d_small.size_seen, 8.0, 1e-9);
    EXPECT_NEAR(d_small.size_error, 2.0, 1e-9);

    // A frozen sprite has no direction; a sprite that vanishes halfway is not present.
    auto frozen = v.frames[0].unsqueeze(0).expand({8, 3, 32, 32}).contiguous();
    EXPECT_FALSE(detect(frozen, "a yellow square moving right over a green background", cfg).direction_ok);
    auto vanish = v.frames.clone();
    vanish.narrow(0, 4, 4).copy_(render(place_scene(parse_caption("a red circle moving up over a green background", cfg), cfg, 1), cfg).frames.narrow(0, 4, 4));
    const auto d_vanish = detect(vanish, "a yellow square moving right over a green background", cfg);
    EXPECT_FALSE(d_vanish.sprite_present);
    EXPECT_EQ(d_vanish.blob_in_frame, std::vector<bool>({true, true, true, true, false, false, false, false}));
    EXPECT_EQ(detect(v.frames, "a yellow square moving right over a green background", cfg).blob_in_frame, std::vector<bool>(8, true));
}

// The caption probe on the shipped model: another sprite colour or background costs it (it uses those words at
// sigma 0.5: +6..+12 measured), the scrambled-frames gap is measured when the world has a scrambling stride and
// NaN when it has none (4 frames: stride 2 shares a factor, stride 3 is the reversal's neighbour).
TEST(CaptionProbe, ShippedModelPaysForAnotherColourAndTheFrameOrderIsProbed) {
    auto m    = world::EmbeddedModel::load(test::data_path("../../data/models/sprites-tiny"));
    auto rows = world::probe_captions(m, 2, {0.5});
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_GT(rows[0].loss_true, 0.0);
    EXPECT_GT(rows[0].gap_colour, 1.0);
    EXPECT_GT(rows[0].gap_background, 1.0);
    EXPECT_TRUE(std::isfinite(rows[0].gap_shuffled));
    EXPECT_NE(rows[0].gap_shuffled, 0.0);
    m.world.frames = 4;
    EXPECT_TRUE(std::isnan(world::probe_captions(m, 1, {0.5})[0].gap_shuffled));
}

// world-eval reports, per frame index, the share of videos whose blob passes the detector there (where a model's
// videos fade): one value per frame, each a share of the pairs.
TEST(WorldEval, ReportsTheBlobPerFrame) {
    const auto model = test::data_path("../../data/models/sprites-tiny");
    const auto r     = test::run_profdit("world-eval --model " + model + " --pairs 2 --steps 2 --threads 1");
    ASSERT_EQ(r.code, 0) << r.err;
    std::istringstream is(markdown_cell(r.out, "blob per frame"));
    std::vector<double> shares;
    for (double x; is >> x;) shares.push_back(x);
    ASSERT_EQ(shares.size(), 8u) << r.out;
    for (double x : shares) EXPECT_TRUE(x == 0.0 || x == 0.5 || x == 1.0) << r.out;
}

// Controllability's tally: a video counts when it moved as its column's word says; a seed whose videos all moved one
// way whatever the word is the noise's choice (not a seed with a video that showed no motion).
TEST(Controllability, CountsCaptionedMotionAndSeedsIgnoringTheWord) {
    Controllability c;
    c.words  = {"left", "right", "up", "down"};
    c.motion = {{"left", "right", "up", "down"}, {"left", "left", "left", "left"}, {"", "", "", ""}, {"up", "up", "", "up"}};
    EXPECT_DOUBLE_EQ(c.rate(), 5.0 / 16);
    EXPECT_EQ(c.seeds_ignoring_word(), 1);
    c.motion[3][2] = "up";
    EXPECT_EQ(c.seeds_ignoring_word(), 2);
    EXPECT_DOUBLE_EQ(c.rate(), 6.0 / 16);
}

// world-eval --controllability N: after the summary, per seed a row with its caption (the direction word as '*') and,
// per direction word, where that word's video moved; the summary's share is the share of cells equal to their column.
TEST(WorldEval, ControllabilityShowsWhereEachWordsVideoMoved) {
    const auto model = test::data_path("../../data/models/sprites-tiny");
    const auto r     = test::run_profdit("world-eval --model " + model + " --controllability 1 --steps 2 --threads 1");
    ASSERT_EQ(r.code, 0) << r.err;
    const auto cfg = world::EmbeddedModel::load(model).world;
    auto scene = parse_caption(world::held_out_caption(cfg, 0), cfg);
    scene.sprites[0].direction = "*";
    const auto per_seed = r.out.substr(r.out.find("\n\n") + 2);
    EXPECT_EQ(markdown_cell(per_seed, "seed"), "0") << r.out;
    EXPECT_EQ(markdown_cell(per_seed, "caption"), caption(scene)) << r.out;
    ASSERT_EQ(cfg.directions.size(), 4u);
    auto is_direction = [&](const std::string& d) { return std::count(cfg.directions.begin(), cfg.directions.end(), d) == 1; };
    int  right        = 0;
    for (const auto& w : cfg.directions) {
        const auto cell  = markdown_cell(per_seed, w);  // "MOTION" or, in a world with heading, "MOTION (nose HEADING)"
        const auto moved = cell.substr(0, cell.find(" (nose "));
        EXPECT_TRUE(moved == "-" || is_direction(moved)) << w << ": '" << cell << "'";
        if (cfg.heading) {
            ASSERT_NE(cell, moved) << w << ": no nose in '" << cell << "'";
            const auto nose = cell.substr(moved.size() + 7, cell.size() - moved.size() - 8);
            EXPECT_TRUE((nose == "-" || is_direction(nose)) && cell.back() == ')') << w << ": '" << cell << "'";
        }
        right += moved == w;
    }
    char want[16];
    std::snprintf(want, sizeof want, "%.3f", right / 4.0);
    EXPECT_EQ(markdown_cell(r.out, "captioned direction"), want) << r.out;
    EXPECT_NE(markdown_cell(r.out, "seeds ignoring the word"), "") << r.out;
}

// world-eval's guidance column says what guided the videos: the early steps' scale and the negative prompt; a bad
// --negative is one clear error with exit code 2.
TEST(WorldEval, GuidanceColumnNamesEarlyGuidanceAndTheNegativePrompt) {
    const auto model = test::data_path("../../data/models/sprites-tiny");
    const auto r     = test::run_profdit("world-eval --model " + model + " --pairs 1 --steps 2 --threads 1 --guide 1.5 --early-guide 4 "
                                         "--early-sigma 0.9 --negative opposite");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(markdown_cell(r.out, "guide"), "1.5 (4 at sigma >= 0.9) against the opposite direction") << r.out;
    const auto bad = test::run_profdit("world-eval --model " + model + " --pairs 1 --steps 2 --negative reversed");
    EXPECT_EQ(bad.code, 2);
    EXPECT_NE(bad.err.find("--negative: unknown negative prompt 'reversed'"), std::string::npos) << bad.err;
}

#ifdef PROFDIT_HAVE_OPENCV
// world-eval --strip: per held-out pair one row, the sample's frames and then its ground truth's (the caption
// rendered at the pair's seed, as the caption probe uses it): 16 frames per row, the last 8 exactly the rendering.
TEST(WorldEval, StripShowsEachSampleNextToItsRenderedGroundTruth) {
    const auto dir   = test::temp_dir();
    const auto model = test::data_path("../../data/models/sprites-tiny");
    const auto r = test::run_profdit("world-eval --model " + model + " --pairs 2 --steps 2 --threads 1 --strip " + dir + "/s.png");
    ASSERT_EQ(r.code, 0) << r.err;
    const cv::Mat png = cv::imread(dir + "/s.png");  // BGR, frames 32 x 32 at zoom 4 with 2 px gaps
    ASSERT_FALSE(png.empty());
    EXPECT_EQ(png.rows, 2 * (128 + 2));
    EXPECT_EQ(png.cols, 16 * (128 + 2));
    const auto cfg = world::EmbeddedModel::load(model).world;
    for (int i = 0; i < 2; ++i) {
        EXPECT_NE(r.err.find("strip row " + std::to_string(i) + ": " + world::held_out_caption(cfg, i)), std::string::npos) << r.err;
        const auto truth = render(world::held_out_scene(cfg, i), cfg).frames;  // [F, 3, H, W]
        for (int f = 0; f < 8; ++f) {
            const auto px = png.at<cv::Vec3b>(i * 130 + 4 * 16 + 1, (8 + f) * 130 + 4 * 16 + 1);  // pixel (16, 16) of frame f
            for (int c = 0; c < 3; ++c)
                EXPECT_EQ(int(px[2 - c]), int(std::nearbyint((truth[f][c][16][16].item<float>() + 1.0f) * 127.5f))) << "row " << i << " frame " << f;
        }
    }
}
#endif

// The scene of a seed must not depend on the standard library: the draws are written out in common/draw.h over
// mt19937_64, whose outputs the standard fixes. The scene below follows from those outputs alone (scripts/scene_draws.py
// computes it in Python from the standard's engine parameters).
TEST(World, DrawsFollowTheEngineOutputsNotTheStandardLibrary) {
    std::mt19937_64 rng(42), raw(42);
    for (int i = 0; i < 1000; ++i) {
        EXPECT_EQ(uniform_below(rng, 3), raw() % 3);
        EXPECT_EQ(uniform01(rng), double(raw() >> 11) * 0x1.0p-53);
        EXPECT_EQ(uniform_int(rng, 10, 12), int64_t(10 + raw() % 3));
    }
    const uint64_t n = (1ull << 63) + 1;  // outputs below 2^64 mod n = 2^63 - 1 are rejected: about half
    int            extra = 0;
    for (int i = 0; i < 200; ++i) {
        const uint64_t x = uniform_below(rng, n);
        EXPECT_LT(x, n);
        uint64_t r;
        while ((r = raw()) < (1ull << 63) - 1) ++extra;
        EXPECT_EQ(x, r % n);
    }
    EXPECT_GT(extra, 50);

    WorldConfig cfg;
    const Scene s = sample_scene(cfg, 1);
    EXPECT_EQ(caption(s), "a red circle moving left over a gray background");
    EXPECT_EQ(s.sprites[0].size, 10);
    EXPECT_EQ(s.sprites[0].x0, 21);
    EXPECT_EQ(s.sprites[0].y0, 23);
}
