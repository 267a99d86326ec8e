#!/usr/bin/env python3
"""Makes lpips_alex_goldens.safetensors (beside this file) with the official LPIPS code.

Usage: python3 make_goldens.py PERCEPTUAL_SIMILARITY_CHECKOUT [OUT.safetensors]

Runs the unmodified `lpips.LPIPS(net="alex", ...)` of richzhang/PerceptualSimilarity on the CPU in float64
(Debian 12's python3-torch 1.13 and python3-torchvision 0.14) with the package's shipped v0.1 linear layers
(lpips/weights/v0.1/alex.pth) and an AlexNet trunk whose weights come from a closed formula (trunk_weight
below), since the ImageNet weights cannot be downloaded here and 10 MB of random weights should not be
stored: profdit's test rebuilds the same trunk from the same formula. Two frame pairs of uint8 levels
are scored under both conventions: spatial=True (each layer's map upsampled to H x W, then the mean:
TeaCache / VideoSys) and spatial=False (each layer averaged at its own resolution: the package default).
"""
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, sys.argv[1])
import lpips  # noqa: E402  (the checkout's package, unmodified)

TRUNK = [("net.slice1.0", 64, 3, 11), ("net.slice2.3", 192, 64, 5), ("net.slice3.6", 384, 192, 3),
         ("net.slice4.8", 256, 384, 3), ("net.slice5.10", 256, 256, 3)]


def weyl(n, salt):
    """u_i = frac(((i + salt) * 2654435761 mod 2^32) / 2^32) - 0.5, exact in int64: uniform-looking in [-0.5, 0.5)."""
    i = torch.arange(n, dtype=torch.int64) + salt
    return ((i * 2654435761) % 4294967296).double() / 4294967296.0 - 0.5


def trunk_weight(layer, shape, bias):
    """He-scaled uniform weights (variance 2 / fan_in; biases 0.1 of that), salt 1000 * layer (+ 500 for biases)."""
    n = int(np.prod(shape))
    fan_in = shape[1] * shape[2] * shape[3] if not bias else 1
    std = (2.0 / fan_in) ** 0.5 * (0.1 if bias else 1.0)
    return (weyl(n, 1000 * layer + (500 if bias else 0)) * (12.0 ** 0.5) * std).reshape(shape)


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        dtype = {np.dtype("float64"): "F64", np.dtype("uint8"): "U8"}[a.dtype]
        raw = a.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    out_path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                  "lpips_alex_goldens.safetensors")
    torch.manual_seed(0)  # only touches the trunk's own initialisation, which trunk_weight overwrites
    nets = {s: lpips.LPIPS(net="alex", spatial=s, pnet_rand=True, verbose=False).double().eval() for s in (True, False)}
    sd = nets[True].state_dict()
    for k, (key, cout, cin, ks) in enumerate(TRUNK):
        sd[key + ".weight"] = trunk_weight(k, (cout, cin, ks, ks), False)
        sd[key + ".bias"] = trunk_weight(k, (cout, 1, 1, 1), True).reshape(cout)
    for n in nets.values():
        n.load_state_dict(sd)

    g = torch.Generator().manual_seed(1)
    ref = torch.randint(0, 256, (2, 3, 64, 72), generator=g).double()
    blur = torch.nn.functional.avg_pool2d(ref, 5, 1, 2, count_include_pad=False)  # a blurred, noisy test frame
    test = (blur + torch.randn(ref.shape, generator=g, dtype=torch.float64) * 12).round().clamp(0, 255)
    out = {f"lin{k}.model.1.weight": sd[f"lin{k}.model.1.weight"].numpy() for k in range(5)}
    out["test_levels"] = test.to(torch.uint8).numpy()
    out["ref_levels"] = ref.to(torch.uint8).numpy()
    with torch.no_grad():
        x, y = test / 255.0 * 2.0 - 1.0, ref / 255.0 * 2.0 - 1.0  # uint8 levels -> [-1, 1]
        for s, name in ((True, "lpips_spatial"), (False, "lpips_mean")):
            d = nets[s](x, y)  # spatial: [F, 1, H, W]; mean: [F, 1, 1, 1]
            out[name] = d.mean(dim=(1, 2, 3)).numpy()
    write_safetensors(out_path, out)
    print(out_path, {k: out[k].tolist() for k in ("lpips_spatial", "lpips_mean")})


if __name__ == "__main__":
    main()
