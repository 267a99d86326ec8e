#!/usr/bin/python3
"""How much can the direction word lower the denoising loss at each noise level? (issue 16)

The sprite world is small enough to enumerate: once a caption fixes colour, shape, background and
direction, a video is fixed by the sprite's size and start position. So the Bayes-optimal denoiser
E[x0 | x_t, caption] is a softmax-weighted mean over every video the caption allows, and its velocity
loss with the true caption can be set against the loss with the direction word reversed (or changed).

Two optimal denoisers are compared:
  absolute   the true prior: positions exactly as harness/world/world.cpp's place_scene draws them
             (the whole track stays in view, so the direction fixes where the sprite starts);
  relative   the best a translation-equivariant model can do (Wan2.1's DiT: RoPE is relative, the patch
             embedding has no padding): the same track at every cyclic shift of the frame, i.e. the
             caption's direction and shape but no knowledge of absolute position.

A gap (loss with a wrong or no direction word / loss with the true word - 1) well above zero means the word carries
information a denoiser can use at that noise level. Usage:
  scripts/direction_oracle.py [--scenes 24] [--draws 2] [--seed 0] [--speed 2] [--sizes 10 12] [--heading]
(--speed and --sizes try another world: px per frame and the sprite's side range, as world.speed, sprite_min/max;
--heading the world whose sprites show their heading: the front third magenta, as world.heading.)
Prints a markdown table (one row per sigma) on stdout. Pure numpy; about a minute on one core.
"""
import argparse

import numpy as np

F, H, W = 8, 32, 32
SPEED, SIZES, STRIPE = 2, (10, 11, 12), 4
HEADING = False
NOSE = (0.95, -0.85, 0.95)  # world.cpp nose_rgb()
RGB = {"red": (0.95, -0.85, -0.85), "yellow": (0.95, 0.85, -0.9), "white": (0.95, 0.95, 0.95),
       "blue": (-0.8, -0.55, 0.6), "green": (-0.7, 0.35, -0.65), "gray": (-0.15, -0.15, -0.15)}
VEL = {"left": (-SPEED, 0), "right": (SPEED, 0), "up": (0, -SPEED), "down": (0, SPEED)}
REVERSE = {"left": "right", "right": "left", "up": "down", "down": "up"}
TURN = {"left": "up", "up": "right", "right": "down", "down": "left"}


def set_world(speed, sizes):
    global SPEED, SIZES, VEL
    SPEED, SIZES = speed, tuple(sizes)
    VEL = {"left": (-SPEED, 0), "right": (SPEED, 0), "up": (0, -SPEED), "down": (0, SPEED)}
    for s in SIZES:
        if s + SPEED * (F - 1) > W:
            raise SystemExit(f"a {s} px sprite moving {SPEED * (F - 1)} px does not fit {W} px")


def background(bg, pattern):
    rows = np.arange(H)
    shade = np.where((pattern == "stripes") & ((rows // STRIPE) % 2 == 1), 0.45, 1.0)  # [H]
    c = np.array(RGB[bg], np.float32)
    img = (c[:, None] + 1.0) * shade[None, :] - 1.0                                      # [3, H]
    return np.broadcast_to(img[None, :, :, None], (F, 3, H, W)).astype(np.float32)       # [F, 3, H, W]


def track_mask(shape, size, x0, y0, direction):
    # 0 background, 1 sprite, 2 its nose (the front third along the motion, HEADING worlds only)
    vx, vy = VEL[direction]
    px = np.arange(W) + 0.5
    py = np.arange(H) + 0.5
    r = size / 2.0
    m = np.zeros((F, H, W), np.uint8)
    for f in range(F):
        cx, cy = x0 + vx * f, y0 + vy * f
        dx, dy = px[None, :] - cx, py[:, None] - cy
        inside = (np.abs(dx) <= r) & (np.abs(dy) <= r) if shape == "square" else dx * dx + dy * dy <= r * r
        nose = HEADING & ((dx * vx + dy * vy) / max(np.hypot(vx, vy), 1e-9) > size / 6.0)
        m[f] = np.where(inside, np.where(nose, 2, 1), 0)
    return m


def start_range(size, v, extent):
    r = size / 2.0
    lo, hi = r - min(0.0, v * (F - 1)), extent - r - max(0.0, v * (F - 1))
    vals = set(range(int(np.ceil(lo)), int(np.floor(hi)) + 1)) | {lo, hi}
    return sorted(vals)


def absolute_masks(shape, direction):
    vx, vy = VEL[direction]
    return np.stack([track_mask(shape, s, x, y, direction)
                     for s in SIZES for x in start_range(s, vx, W) for y in start_range(s, vy, H)])  # [K, F, H, W]


def relative_masks(shape, direction):
    out = []
    for s in SIZES:
        # every cyclic shift of one track; odd sizes also at half-pixel centres, as place_scene can put them
        for ox, oy in [(0, 0)] + ([(0.5, 0), (0, 0.5), (0.5, 0.5)] if s % 2 else []):
            vx, vy = VEL[direction]
            # centred track from an integer start (place_scene's starts are integers, or half-integers at the edges)
            base = track_mask(shape, s, np.floor(W / 2 - vx * (F - 1) / 2) + ox, np.floor(H / 2 - vy * (F - 1) / 2) + oy, direction)
            out += [np.roll(base, (dy, dx), axis=(1, 2)) for dy in range(H) for dx in range(W)]
    return np.stack(out)                                                                    # [K, F, H, W]


def renders(masks, colour, bg, pattern):
    b = background(bg, pattern).reshape(-1)                                                 # [D]
    c = np.array(RGB[colour], np.float32)[None, None, :, None, None]
    n = np.array(NOSE, np.float32)[None, None, :, None, None]
    body = (masks == 1)[:, :, None, :, :].astype(np.float32)                                # [K, F, 1, H, W]
    nose = (masks == 2)[:, :, None, :, :].astype(np.float32)                                # [K, F, 1, H, W]
    bb = b.reshape(1, F, 3, H, W)
    r = bb + body * (c - bb) + nose * (n - bb)                                              # [K, F, 3, H, W]
    return r.reshape(len(masks), -1)                                                        # [K, D]


def oracle_losses(mask_sets, colour, bg, pattern, x0, noisy, chunk=2048):
    # mean squared velocity error of the posterior-mean denoiser over the candidate videos (uniform prior),
    # for each (sigma, x_t) in `noisy`; streamed over chunks of candidates with a running log-sum-exp
    n = len(noisy)
    top, norm, acc = np.full(n, -np.inf), np.zeros(n), np.zeros((n, x0.size))
    for masks in mask_sets:
        for i in range(0, len(masks), chunk):
            R = renders(masks[i:i + chunk], colour, bg, pattern)                           # [k, D]
            rr = np.einsum("kd,kd->k", R, R)                                                # [k]
            for j, (sigma, xt) in enumerate(noisy):
                logw = (2 * (1 - sigma) * (R @ xt) - (1 - sigma) ** 2 * rr) / (2 * sigma ** 2)  # [k]
                m = max(top[j], float(logw.max()))
                scale, w = np.exp(top[j] - m), np.exp(logw - m)                            # [k]
                norm[j], acc[j], top[j] = norm[j] * scale + w.sum(), acc[j] * scale + w @ R, m
    return [float(np.mean(((acc[j] / norm[j] - x0) / sigma) ** 2)) for j, (sigma, _) in enumerate(noisy)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", type=int, default=24)
    ap.add_argument("--draws", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--speed", type=int, default=SPEED)
    ap.add_argument("--sizes", type=int, nargs=2, default=(SIZES[0], SIZES[-1]))
    ap.add_argument("--heading", action="store_true")
    a = ap.parse_args()
    global HEADING
    HEADING = a.heading
    set_world(a.speed, range(a.sizes[0], a.sizes[1] + 1))
    rng = np.random.default_rng(a.seed)
    sigmas = [0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.995]
    priors = {"absolute": absolute_masks, "relative": relative_masks}
    words = {"true": lambda d: [d], "reversed": lambda d: [REVERSE[d]], "turned": lambda d: [TURN[d]], "any": lambda d: list(VEL)}
    loss = {(p, w, s): [] for p in priors for w in words for s in sigmas}
    cache = {}
    for scene in range(a.scenes):
        shape = rng.choice(["circle", "square"])
        colour = rng.choice(["red", "yellow", "white"])
        bg, pattern = rng.choice(["blue", "green", "gray"]), rng.choice(["solid", "stripes"])
        d = rng.choice(list(VEL))
        size = int(rng.choice(SIZES))
        xs, ys = start_range(size, VEL[d][0], W), start_range(size, VEL[d][1], H)
        x0 = renders(track_mask(shape, size, rng.choice(xs), rng.choice(ys), d)[None], colour, bg, pattern)[0]  # [D]
        for p, make in priors.items():
            for wname, word in words.items():
                sets = []
                for wd in word(d):
                    if (p, shape, wd) not in cache:
                        cache[(p, shape, wd)] = make(shape, wd)
                    sets.append(cache[(p, shape, wd)])
                keys = [(s, k) for s in sigmas for k in range(a.draws)]
                noisy = [(s, (1 - s) * x0 + s * np.random.default_rng([a.seed, scene, int(s * 1000), k])
                          .standard_normal(x0.size).astype(np.float32)) for s, k in keys]
                for (s, _), l in zip(keys, oracle_losses(sets, colour, bg, pattern, x0, noisy)):
                    loss[(p, wname, s)].append(l)
    print("| sigma | absolute: loss | reversed | turned | no direction | relative: loss | reversed | turned | no direction |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in sigmas:
        row = [f"{s:.3f}"]
        for p in priors:
            t = np.mean(loss[(p, "true", s)])
            row += [f"{t:.4f}"] + [f"{np.mean(loss[(p, w, s)]) / t - 1:+.3f}" if t > 0 else "-" for w in ("reversed", "turned", "any")]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
