"""torch.nn.functional.scaled_dot_product_attention on the shapes of
bench/gpu-attention.ts (read from `node dist/bench/gpu-attention.js --shapes`
output, passed with --shapes FILE), timed with CUDA events: median of --iters
calls after 3 warm-ups, per SDPA backend (default choice, flash, efficient,
cudnn, where the backend accepts the shape). Decode shapes rotate through
K/V copies (>= 1 GiB per rotation) like ours. q is [1, nHeads, nQ, D] in the
K/V dtype, k/v [1, nKvHeads, nKv, D]; GQA through enable_gqa=True. Decode
(nQ 1) runs with is_causal=False: torch aligns the causal mask top-left, and a
single last-position query sees every key anyway.

Usage: python3 bench/torch_sdpa.py --shapes shapes.json --out torch.json [--iters N]
"""
import argparse
import json
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def time_calls(fn, iters, warmup=3):
    for _ in range(warmup):
        fn(0)
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    for i in range(iters):
        starts[i].record()
        fn(warmup + i)
        ends[i].record()
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) for s, e in zip(starts, ends))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--iters", type=int, default=30)
    args = ap.parse_args()
    shapes = json.load(open(args.shapes))
    dev = torch.device("cuda")
    rows = []
    backends = [
        ("default", None),
        ("flash", SDPBackend.FLASH_ATTENTION),
        ("efficient", SDPBackend.EFFICIENT_ATTENTION),
        ("cudnn", SDPBackend.CUDNN_ATTENTION),
    ]
    for s in shapes:
        if s.get("nSel", 0) > 0:  # sparse decode: no SDPA peer
            continue
        dtype = torch.float16 if s["dtype"] == "f16" else torch.bfloat16
        H, Hkv, nQ, nKv, D = s["nHeads"], s["nKvHeads"], s["nQ"], s["nKv"], s["headDim"]
        kv_bytes = 2 * Hkv * nKv * D * 2
        copies = max(1, min(16, -(-(1 << 30) // kv_bytes))) if s["kind"] == "decode" else 1
        g = torch.Generator(device=dev).manual_seed(1)
        q = torch.rand((1, H, nQ, D), device=dev, dtype=dtype, generator=g) * 2 - 1
        ks = [torch.rand((1, Hkv, nKv, D), device=dev, dtype=dtype, generator=g) * 2 - 1 for _ in range(copies)]
        vs = [torch.rand((1, Hkv, nKv, D), device=dev, dtype=dtype, generator=g) * 2 - 1 for _ in range(copies)]
        causal = bool(s["causal"]) and nQ > 1
        gqa = H != Hkv
        for bname, backend in backends:
            def call(i):
                kw = {"is_causal": causal}
                if gqa:
                    kw["enable_gqa"] = True
                return F.scaled_dot_product_attention(q, ks[i % copies], vs[i % copies], **kw)
            row = {"name": s["name"], "backend": bname, "ms": None}
            try:
                if backend is None:
                    ms = time_calls(call, args.iters)
                else:
                    with sdpa_kernel([backend]):
                        ms = time_calls(call, args.iters)
                row["ms"] = ms
            except Exception as e:  # backend refuses the shape / dtype / GQA
                row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
            rows.append(row)
            print(f"{s['name']:40s} {bname:10s} {row['ms'] if row['ms'] is not None else row.get('error')}", flush=True)
        del ks, vs, q
        torch.cuda.empty_cache()
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": torch.cuda.get_device_name(0)}
    json.dump({"info": info, "iters": args.iters, "rows": rows}, open(args.out, "w"), indent=2)


if __name__ == "__main__":
    main()
