"""Exports a trained checkpoint (train.py) as ONNX graphs sharing one f16 weight file.

  /usr/bin/python3 scripts/train-lm/export.py --checkpoint /tmp/main.pt --out models/lm/main

writes into --out:
  weights.bin     every weight once, float16, 64-byte aligned (ONNX external data)
  decoder.onnx    the plain graph, Optimum style (batch 1):
                    input_ids i64 [1, T], position_ids i64 [1, T],
                    past_key_values.{l}.key / .value f32 [1, nKvHeads, P, headDim]
                    -> logits f32 [1, T, 256], present.{l}.key / .value f32 [1, nKvHeads, P + T, headDim]
  stage-{s}.onnx  the same weights cut at attention, for an external attention backend:
                    stage 0:        input_ids, position_ids -> residual [1, T, d], q_0 [1, nHeads, T, headDim],
                                    k_0, v_0 [1, nKvHeads, T, headDim] (RoPE applied to q and k)
                    stage 1..L-1:   residual, attn [1, nHeads, T, headDim] (layer s-1's attention output),
                                    position_ids -> residual, q_s, k_s, v_s
                    stage L:        residual, attn -> logits [1, T, 256]
  config.json     the model's shape, training facts, and reference logits from PyTorch
                  (f16-rounded weights, float32 arithmetic) for a fixed prompt

Weights are stored as float16 and cast to float32 inside each graph (ORT folds
the casts once at session start), so arithmetic is float32 everywhere.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import ByteLM, Config, apply_rope, rope_tables  # noqa: E402

OPSET = 17
REFERENCE_PROMPT = b"ABANDON, v. t. To give up wholly; to forsake. The key is 8351."


def attend(cfg: Config, q, k, v, past_len):
    """q (1,H,T,D), k, v (1,Hkv,P+T,D): causal attention, query i at position past_len + i."""
    B, H, T, D = q.shape
    S = k.shape[2]
    group = cfg.n_heads // cfg.n_kv_heads
    qg = q.reshape(B, cfg.n_kv_heads, group, T, D)
    scores = torch.matmul(qg, k.unsqueeze(2).transpose(-1, -2)) / math.sqrt(D)
    i = torch.arange(T).unsqueeze(1) + past_len
    j = torch.arange(S).unsqueeze(0)
    scores = scores.masked_fill(j > i, float("-inf"))
    p = torch.softmax(scores, dim=-1)
    return torch.matmul(p, v.unsqueeze(2)).reshape(B, H, T, D)


class PlainDecoder(torch.nn.Module):
    def __init__(self, m: ByteLM):
        super().__init__()
        self.m = m

    def forward(self, input_ids, position_ids, *past):
        cfg = self.m.cfg
        cos, sin = rope_tables(cfg, position_ids[0])
        x = self.m.embed(input_ids)
        presents = []
        for l, b in enumerate(self.m.blocks):
            pk, pv = past[2 * l], past[2 * l + 1]
            q, k, v = b.attn.project(b.attn_norm(x), cos, sin)
            k = torch.cat([pk, k], dim=2)
            v = torch.cat([pv, v], dim=2)
            presents += [k, v]
            a = attend(cfg, q, k, v, pk.shape[2])
            x = x + b.attn.o(a.transpose(1, 2).reshape(1, -1, cfg.n_heads * cfg.head_dim))
            x = x + b.mlp(b.mlp_norm(x))
        logits = torch.nn.functional.linear(self.m.norm(x), self.m.embed.weight)
        return (logits, *presents)


class Stage(torch.nn.Module):
    """Stage s of the attention-cut graph (see the module docstring)."""

    def __init__(self, m: ByteLM, s: int):
        super().__init__()
        self.m = m
        self.s = s

    def finish_layer(self, x, attn, l):
        cfg = self.m.cfg
        b = self.m.blocks[l]
        x = x + b.attn.o(attn.transpose(1, 2).reshape(1, -1, cfg.n_heads * cfg.head_dim))
        return x + b.mlp(b.mlp_norm(x))

    def forward(self, *inputs):
        cfg, s = self.m.cfg, self.s
        if s == 0:
            input_ids, position_ids = inputs
            x = self.m.embed(input_ids)
        elif s < cfg.n_layers:
            x, attn, position_ids = inputs
            x = self.finish_layer(x, attn, s - 1)
        else:
            x, attn = inputs
            x = self.finish_layer(x, attn, s - 1)
            return torch.nn.functional.linear(self.m.norm(x), self.m.embed.weight)
        cos, sin = rope_tables(cfg, position_ids[0])
        b = self.m.blocks[s]
        q, k, v = b.attn.project(b.attn_norm(x), cos, sin)
        return x, q, k, v


def export_graph(module, args, input_names, output_names, dynamic_axes, path):
    torch.onnx.export(module, args, path, input_names=input_names, output_names=output_names,
                      dynamic_axes=dynamic_axes, opset_version=OPSET, do_constant_folding=True)


class WeightFile:
    """One f16 blob shared by every graph; identical tensors are stored once."""

    def __init__(self):
        self.chunks: list[bytes] = []
        self.size = 0
        self.index: dict[str, tuple[int, int]] = {}

    def add(self, data: bytes) -> tuple[int, int]:
        key = hashlib.sha256(data).hexdigest()
        if key not in self.index:
            pad = (-self.size) % 64
            if pad:
                self.chunks.append(b"\0" * pad)
                self.size += pad
            self.index[key] = (self.size, len(data))
            self.chunks.append(data)
            self.size += len(data)
        return self.index[key]


def to_f16_external(path: str, weights: WeightFile, location: str) -> None:
    """Float32 initializers of rank >= 2 become f16 external data plus a Cast to f32."""
    g = onnx.load(path)
    casts = []
    for init in g.graph.initializer:
        if init.data_type != TensorProto.FLOAT or len(init.dims) < 2:
            continue
        arr = numpy_helper.to_array(init).astype(np.float16)
        name = init.name
        f16_name = name + "__f16"
        offset, length = weights.add(arr.tobytes())
        t = TensorProto()
        t.name = f16_name
        t.data_type = TensorProto.FLOAT16
        t.dims.extend(arr.shape)
        init.CopyFrom(t)
        init.data_location = TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
            e = init.external_data.add()
            e.key, e.value = k, v
        casts.append(helper.make_node("Cast", [f16_name], [name], to=TensorProto.FLOAT, name=f"cast_{name}"))
    nodes = list(g.graph.node)
    del g.graph.node[:]
    g.graph.node.extend(casts + nodes)
    onnx.save(g, path)


def round_weights_f16(m: ByteLM) -> None:
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() >= 2:
                p.copy_(p.half().float())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--card", default=None, help="JSON with training facts to merge into config.json")
    a = ap.parse_args()
    ck = torch.load(a.checkpoint, map_location="cpu")
    cfg = Config(**ck["config"])
    m = ByteLM(cfg)
    m.load_state_dict(ck["state"])
    m.eval()
    round_weights_f16(m)
    os.makedirs(a.out, exist_ok=True)
    L, Hkv, D = cfg.n_layers, cfg.n_kv_heads, cfg.head_dim
    T, P = 5, 3
    ids = torch.randint(0, 256, (1, T))
    pos = torch.arange(P, P + T)[None]
    weights = WeightFile()
    with torch.no_grad():
        past = [torch.randn(1, Hkv, P, D) for _ in range(2 * L)]
        names = []
        for l in range(L):
            names += [f"past_key_values.{l}.key", f"past_key_values.{l}.value"]
        outs = ["logits"] + [f"present.{l}.{kind}" for l in range(L) for kind in ("key", "value")]
        dyn = {"input_ids": {1: "T"}, "position_ids": {1: "T"}, "logits": {1: "T"}}
        dyn.update({n: {2: "P"} for n in names})
        dyn.update({n: {2: "P+T"} for n in outs[1:]})
        plain = os.path.join(a.out, "decoder.onnx")
        export_graph(PlainDecoder(m), (ids, pos, *past), ["input_ids", "position_ids", *names], outs, dyn, plain)
        to_f16_external(plain, weights, "weights.bin")
        x = torch.randn(1, T, cfg.d_model)
        attn = torch.randn(1, cfg.n_heads, T, D)
        qkv_dyn = {"q": {2: "T"}, "k": {2: "T"}, "v": {2: "T"}, "residual_out": {1: "T"}}
        for s in range(L + 1):
            path = os.path.join(a.out, f"stage-{s}.onnx")
            if s == 0:
                args, ins = (ids, pos), ["input_ids", "position_ids"]
                dyn_s = {"input_ids": {1: "T"}, "position_ids": {1: "T"}, **qkv_dyn}
            elif s < L:
                args, ins = (x, attn, pos), ["residual", "attn", "position_ids"]
                dyn_s = {"residual": {1: "T"}, "attn": {2: "T"}, "position_ids": {1: "T"}, **qkv_dyn}
            else:
                args, ins = (x, attn), ["residual", "attn"]
                dyn_s = {"residual": {1: "T"}, "attn": {2: "T"}, "logits": {1: "T"}}
            outs_s = ["logits"] if s == L else ["residual_out", "q", "k", "v"]
            export_graph(Stage(m, s), args, ins, outs_s, dyn_s, path)
            to_f16_external(path, weights, "weights.bin")
        with open(os.path.join(a.out, "weights.bin"), "wb") as f:
            for c in weights.chunks:
                f.write(c)
        prompt = torch.tensor(list(REFERENCE_PROMPT))[None]
        ref = m(prompt)[0]
    card = {
        "format": "tokenpress-byte-lm/1",
        "name": cfg.name,
        "config": cfg.to_json(),
        "parameters": m.n_params(),
        "stages": L + 1,
        "training": {k: ck.get(k) for k in ("step", "tokens", "minutes", "precision", "args")},
        "reference": {
            "prompt": REFERENCE_PROMPT.decode(),
            "what": "PyTorch logits (f16-rounded weights, float32 arithmetic) at the last 4 positions",
            "positions": list(range(len(REFERENCE_PROMPT) - 4, len(REFERENCE_PROMPT))),
            "logits": [[round(float(v), 6) for v in ref[i]] for i in range(len(REFERENCE_PROMPT) - 4, len(REFERENCE_PROMPT))],
        },
    }
    if a.card:
        card.update(json.load(open(a.card)))
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(card, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(a.out, n)) for n in os.listdir(a.out))
    print(f"{a.out}: {weights.size} bytes of f16 weights, {total} bytes in all", flush=True)


if __name__ == "__main__":
    main()
