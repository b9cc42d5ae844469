#!/usr/bin/env python3
"""The transformers side of `arena-lm-bench`: loads the same model directory, computes the mean
next-token cross-entropy of the same token ids ((i * 7919 + 13) mod vocab) under
torch.inference_mode, one warm-up iteration, then times --iters iterations. Prints JSON: tokens/s,
the loss and every scored position's NLL (for the largest-difference check)."""

import argparse
import json
import time

import torch
import transformers
from transformers import AutoModelForCausalLM

p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--device", default="cpu")
p.add_argument("--dtype", default="f32")
p.add_argument("--batch", type=int, default=1)
p.add_argument("--seq", type=int, default=512)
p.add_argument("--iters", type=int, default=5)
a = p.parse_args()

dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[a.dtype]
model = AutoModelForCausalLM.from_pretrained(a.model, dtype=dtype).to(a.device).eval()
vocab = model.config.vocab_size
n = a.batch * a.seq
ids = torch.tensor([(i * 7919 + 13) % vocab for i in range(n)], device=a.device).view(a.batch, a.seq)


def step():
    logits = model(ids).logits.float()
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, vocab), ids[:, 1:].reshape(-1))


def sync():
    if a.device.startswith("cuda"):
        torch.cuda.synchronize()


with torch.inference_mode():
    # The warm-up: every scored position's NLL, row by row (for arena's largest-difference check).
    logits = model(ids).logits.float()
    nll = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, vocab), ids[:, 1:].reshape(-1), reduction="none"
    ).double()
    loss = float(nll.mean())
    sync()
    t0 = time.perf_counter()
    for _ in range(a.iters):
        step()
    sync()
    secs = (time.perf_counter() - t0) / a.iters
print(json.dumps({
    "tokens_per_s": n / secs,
    "loss": loss,
    "nll": nll.cpu().tolist(),
    "threads": torch.get_num_threads(),
    "versions": f"torch {torch.__version__}, transformers {transformers.__version__}",
}))
