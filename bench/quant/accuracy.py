#!/usr/bin/env python3
"""Accuracy of quantized weights: KL divergence and top-1 agreement of int8 / int4 runs against the float run.

Runs `engine logits` on one model and prompt with each --quantize-* setting, then compares every prompt position's
next-token distribution with the float checkpoint's. Needs numpy (Debian: python3-numpy; run with /usr/bin/python3).

  bench/quant/accuracy.py --engine build/bin/engine --model DIR [--prompt-ids 1,2,3 | --prompt-len 64] [--backend cpu]
                          [--chunk 1]

--chunk 1 reads the prompt one token per step, the way decode meets the weights (on the CPU plugin, prompt chunks
of more than 32 tokens take the packed kernels; HALO_CPU_QUANT_DOT=int8 changes only the few-row ones).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

SETTINGS = [
    ("int8 experts", ["--quantize-experts", "int8"]),
    ("int4 experts", ["--quantize-experts", "int4"]),
    ("int8 everything", ["--quantize-experts", "int8", "--quantize-shared", "int8", "--quantize-attention", "int8",
                         "--quantize-lm-head", "int8"]),
    ("int4 everything", ["--quantize-experts", "int4", "--quantize-shared", "int4", "--quantize-attention", "int4",
                         "--quantize-lm-head", "int4"]),
]


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def logits(engine, model, ids, extra, backend, out, chunk):
    cmd = [engine, "logits", "--backend", backend, "--model", model, "--prompt-ids", ",".join(map(str, ids)),
           "--out", out, "--quiet"] + extra
    if chunk:
        cmd += ["--chunk", str(chunk)]
    subprocess.run(cmd, check=True)
    return np.load(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--prompt-ids", help="comma-separated ids (default: prompt.json in the model folder, else random)")
    ap.add_argument("--prompt-len", type=int, default=64, help="length of the random prompt")
    ap.add_argument("--chunk", type=int, default=0, help="prompt tokens per step (default: the engine's)")
    ap.add_argument("--json", action="store_true", help="print one JSON line instead of a table")
    a = ap.parse_args()

    cfg = json.load(open(os.path.join(a.model, "config.json")))
    if a.prompt_ids:
        ids = [int(t) for t in a.prompt_ids.split(",")]
    elif os.path.exists(os.path.join(a.model, "prompt.json")):
        ids = json.load(open(os.path.join(a.model, "prompt.json")))["ids"]
    else:
        ids = list(np.random.default_rng(7).integers(0, cfg["vocab_size"], a.prompt_len))
    with tempfile.TemporaryDirectory() as tmp:
        base = logits(a.engine, a.model, ids, [], a.backend, os.path.join(tmp, "base.npy"), a.chunk)
        lp = log_softmax(base)
        rows = []
        for name, extra in SETTINGS:
            q = logits(a.engine, a.model, ids, extra, a.backend, os.path.join(tmp, "q.npy"), a.chunk)
            lq = log_softmax(q)
            kl = (np.exp(lp) * (lp - lq)).sum(axis=-1)
            top1 = (base.argmax(axis=-1) == q.argmax(axis=-1)).mean()
            rows.append({"setting": name, "kl_mean": float(kl.mean()), "kl_max": float(kl.max()),
                         "top1_agreement": float(top1), "max_abs_logit_diff": float(np.abs(base - q).max())})
    if a.json:
        print(json.dumps({"model": a.model, "positions": len(ids), "results": rows}))
        return
    dot = os.environ.get("HALO_CPU_QUANT_DOT", "exact") or "exact"
    print(f"model: {a.model}, {len(ids)} prompt positions ({a.chunk or 'default'} per step, quant dot {dot}), "
          "against the unquantized checkpoint")
    print("| setting | mean KL(float || quantized) | max KL | top-1 agreement | max |logit diff| |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['setting']} | {r['kl_mean']:.5f} | {r['kl_max']:.5f} | {100 * r['top1_agreement']:.1f}% "
              f"| {r['max_abs_logit_diff']:.3f} |")


if __name__ == "__main__":
    sys.exit(main())
