#!/usr/bin/env python3
"""Times the official Wan2.1 DiT forward on the inputs `profdit dit-forward --repeat` times, for a side-by-side comparison.

Usage: reference_dit_forward.py WAN21_CHECKOUT WEIGHTS.safetensors INPUTS.safetensors CONFIG.json
                                [--repeat N] [--threads T] [--compare PROFDIT_OUT.safetensors]

Runs `WanModel` from the checkout's unmodified wan/modules/model.py (github.com/Wan-Video/Wan2.1) in fp32 on the
CPU with the installed torch. Two stand-ins, both outside the model code: diffusers' ConfigMixin/ModelMixin
(plain nn.Module) and `flash_attention`, which is CUDA-only, replaced by softmax(q k^T / sqrt(d)) v in fp32.
WEIGHTS and INPUTS are what `profdit synth` writes (official key names; x, t, context), CONFIG the `{"dit": {...}}`
file given to synth. Prints one JSON line like dit-forward's (median/min/max ms over N forwards after one untimed
forward) and, with --compare, the max abs difference from profdit's output.
"""
import argparse
import json
import os
import statistics
import struct
import sys
import tempfile
import time
import types

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "F16": np.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] == "BF16":
            raw = np.frombuffer(data, np.uint16, offset=e["data_offsets"][0],
                                count=(e["data_offsets"][1] - e["data_offsets"][0]) // 2)
            out[name] = torch.from_numpy(raw.astype(np.int32) << 16).view(torch.float32).reshape(e["shape"])
            continue
        dt = DTYPES[e["dtype"]]
        count = (e["data_offsets"][1] - e["data_offsets"][0]) // np.dtype(dt).itemsize
        out[name] = torch.from_numpy(np.frombuffer(data, dt, offset=e["data_offsets"][0], count=count).copy()).reshape(e["shape"])
    return out


ATTENTION = '''
import math
import torch

def flash_attention(q, k, v, q_lens=None, k_lens=None, dropout_p=0., softmax_scale=None, q_scale=None,
                    causal=False, window_size=(-1, -1), deterministic=False, dtype=torch.bfloat16, version=None):
    # fp32 CPU stand-in for the CUDA-only flash attention: q [B, Lq, N, D], k, v [B, Lk, N, D]
    scale = softmax_scale if softmax_scale is not None else 1.0 / math.sqrt(q.size(-1))
    s = torch.matmul(q.transpose(1, 2), k.transpose(1, 2).transpose(-1, -2)) * scale  # [B, N, Lq, Lk]
    if k_lens is not None:
        keep = torch.arange(k.size(1)).view(1, 1, 1, -1) < k_lens.view(-1, 1, 1, 1)
        s = s.masked_fill(~keep, float("-inf"))
    return torch.matmul(torch.softmax(s, -1), v.transpose(1, 2)).transpose(1, 2).type_as(q)  # [B, Lq, N, D]
'''


def load_official_model(checkout):
    diffusers = types.ModuleType("diffusers")
    cu = types.ModuleType("diffusers.configuration_utils")
    cu.ConfigMixin = object
    cu.register_to_config = lambda f: f
    mu = types.ModuleType("diffusers.models.modeling_utils")
    mu.ModelMixin = torch.nn.Module
    models = types.ModuleType("diffusers.models")
    sys.modules.update({"diffusers": diffusers, "diffusers.configuration_utils": cu, "diffusers.models": models,
                        "diffusers.models.modeling_utils": mu})
    pkg = tempfile.mkdtemp(prefix="wanref_")
    os.makedirs(os.path.join(pkg, "wanref"))
    with open(os.path.join(checkout, "wan", "modules", "model.py")) as src, open(os.path.join(pkg, "wanref", "model.py"), "w") as dst:
        dst.write(src.read())
    with open(os.path.join(pkg, "wanref", "attention.py"), "w") as f:
        f.write(ATTENTION)
    open(os.path.join(pkg, "wanref", "__init__.py"), "w").close()
    sys.path.insert(0, pkg)
    from wanref.model import WanModel
    return WanModel


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkout")
    ap.add_argument("weights")
    ap.add_argument("inputs")
    ap.add_argument("config")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--compare")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = json.load(open(a.config))["dit"]
    WanModel = load_official_model(a.checkout)
    keys = ("model_type", "patch_size", "text_len", "in_dim", "dim", "ffn_dim", "freq_dim", "text_dim", "out_dim",
            "num_heads", "num_layers", "window_size", "qk_norm", "cross_attn_norm", "eps")
    model = WanModel(**{k: (tuple(cfg[k]) if isinstance(cfg.get(k), list) else cfg[k]) for k in keys if k in cfg}).eval()
    model.load_state_dict(read_safetensors(a.weights), strict=True)
    inp = read_safetensors(a.inputs)
    x, t, ctx = inp["x"].float(), inp["t"].long().view(1), inp["context"].float()
    p = model.patch_size
    seq_len = (x.shape[1] // p[0]) * (x.shape[2] // p[1]) * (x.shape[3] // p[2])
    with torch.no_grad():
        out = model([x], t, [ctx], seq_len)[0]
        ms = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            model([x], t, [ctx], seq_len)
            ms.append((time.perf_counter() - t0) * 1e3)
    res = {"event": "reference_dit_forward_timing", "repeat": a.repeat, "median_ms": statistics.median(ms), "min_ms": min(ms),
           "max_ms": max(ms), "tokens": seq_len, "threads": a.threads, "torch": torch.__version__}
    if a.compare:
        res["max_abs_diff_vs_profdit"] = float((out - read_safetensors(a.compare)["out"]).abs().max())
    print(json.dumps(res), file=sys.stderr)


if __name__ == "__main__":
    main()
