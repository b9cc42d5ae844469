#!/usr/bin/env python3
"""The PyTorch side of `arena-detector-bench`: loads the same safetensors weights into
torchvision's ResNet, builds the same uint8 inputs (splitmix64 bytes, as
tests/reference/detector_parity.py), normalises them as the plugin does, runs one warm-up
batch, then times --iters batches under torch.inference_mode. Prints JSON (images/s and the
first batch's logits, which the Rust side compares with its own)."""

import argparse
import json
import time

import numpy as np
import torch
import torchvision
from safetensors.torch import load_file

from detector_parity import MEAN, STD, input_bytes

p = argparse.ArgumentParser()
p.add_argument("--weights", required=True)
p.add_argument("--arch", default="resnet18")
p.add_argument("--classes", type=int, default=2)
p.add_argument("--batch", type=int, default=16)
p.add_argument("--height", type=int, default=224)
p.add_argument("--width", type=int, default=224)
p.add_argument("--iters", type=int, default=5)
p.add_argument("--input-seed", type=int, default=1)
p.add_argument("--device", default="cpu")
p.add_argument("--threads", type=int, default=0)
a = p.parse_args()

if a.threads:
    torch.set_num_threads(a.threads)
model = getattr(torchvision.models, a.arch)(num_classes=a.classes)
model.load_state_dict(load_file(a.weights), strict=True)
model = model.to(a.device).eval()
n = a.batch * 3 * a.height * a.width
x = input_bytes(a.input_seed, n).reshape(a.batch, 3, a.height, a.width)
mean = torch.tensor(MEAN).view(1, 3, 1, 1)
std = torch.tensor(STD).view(1, 3, 1, 1)
x = ((torch.from_numpy(x).float() / 255.0 - mean) / std).to(a.device)


def sync():
    if a.device.startswith("cuda"):
        torch.cuda.synchronize()


with torch.inference_mode():
    logits = model(x).float().cpu().numpy()
    sync()
    t0 = time.perf_counter()
    for _ in range(a.iters):
        model(x)
    sync()
    secs = (time.perf_counter() - t0) / a.iters
print(json.dumps({
    "images_per_s": a.batch / secs,
    "logits": logits.astype(np.float64).tolist(),
    "torch": torch.__version__,
    "torchvision": torchvision.__version__,
    "threads": torch.get_num_threads(),
}))
