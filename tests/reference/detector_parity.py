#!/usr/bin/env python3
"""Parity fixtures for the detector plugin (plugins/detector): torchvision models with
counter-based random weights, their logits on fixed uint8 inputs, written as JSON.

Weights and inputs come from a counter-based generator (splitmix64 of a per-tensor key plus the
element index) that the Rust tests reproduce exactly, so no weight file needs committing: the
Rust side writes the same safetensors file and checks its sha256 against the one recorded here,
then loads it through the plugin's loader and compares logits (relative error <= 1e-4 of the
largest logit).

    python3 -m venv /opt/refenv && /opt/refenv/bin/pip install torch torchvision numpy safetensors \\
        opencv-python-headless
    /opt/refenv/bin/python tests/reference/detector_parity.py          # writes the fixtures
    /opt/refenv/bin/python tests/reference/detector_parity.py --check  # recomputes, compares

(torch 2.15.0, torchvision 0.29.2, opencv-python-headless 5.0.0 produced the committed file.)
"""

import hashlib
import json
import os
import sys
import tempfile

import numpy as np
import torch
import torchvision
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "detector")
M64 = (1 << 64) - 1
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def fnv1a64(s: str) -> int:
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def splitmix(keys: np.ndarray) -> np.ndarray:
    """splitmix64's output function of state `keys` (uint64; arithmetic wraps)."""
    with np.errstate(over="ignore"):
        z = keys + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def uniform(name: str, seed: int, n: int) -> np.ndarray:
    """n values in [-1, 1), float64, exact: (top 24 bits of splitmix64(key + i)) / 2^23 - 1."""
    key = np.uint64((fnv1a64(name) ^ seed) & M64)
    with np.errstate(over="ignore"):
        z = splitmix(key + np.arange(n, dtype=np.uint64))
    return (z >> np.uint64(40)).astype(np.float64) / 8388608.0 - 1.0


def init_value(name: str, shape, seed: int) -> np.ndarray:
    """The value the generator gives tensor `name` (the Rust side's `synthetic_weight`)."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = uniform(name, seed, n)
    last = name.rsplit(".", 1)[-1]
    if last == "running_var":
        v = 1.0 + 0.5 * u
    elif last == "weight" and len(shape) == 1:  # norm scales
        v = 1.0 + 0.1 * u
    elif len(shape) == 1:  # biases, running means
        v = 0.1 * u
    else:
        fan_in = int(np.prod(shape[1:]))
        v = u * (2.0 / fan_in) ** 0.5
    return v.astype(np.float32).reshape(shape)


def fill(model: torch.nn.Module, seed: int) -> dict:
    sd = model.state_dict()
    out = {}
    for name, t in sd.items():
        if t.dtype == torch.int64:  # num_batches_tracked
            out[name] = torch.zeros((), dtype=torch.int64)
        else:
            out[name] = torch.from_numpy(init_value(name, list(t.shape), seed))
    model.load_state_dict(out)
    return out


class M5(torch.nn.Module):
    """The M5 raw-waveform CNN (Dai et al. 2017) as torchaudio's speech-command tutorial writes
    it (conv1..conv4, bn1..bn4, fc1), returning logits: the plugin's `m5` architecture."""

    def __init__(self, n_output=2, stride=16, n_channel=32):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv1d(1, n_channel, kernel_size=80, stride=stride)
        self.bn1 = nn.BatchNorm1d(n_channel)
        self.conv2 = nn.Conv1d(n_channel, n_channel, kernel_size=3)
        self.bn2 = nn.BatchNorm1d(n_channel)
        self.conv3 = nn.Conv1d(n_channel, 2 * n_channel, kernel_size=3)
        self.bn3 = nn.BatchNorm1d(2 * n_channel)
        self.conv4 = nn.Conv1d(2 * n_channel, 2 * n_channel, kernel_size=3)
        self.bn4 = nn.BatchNorm1d(2 * n_channel)
        self.fc1 = nn.Linear(2 * n_channel, n_output)

    def forward(self, x):  # [B, T] waveform
        F = torch.nn.functional
        x = x.unsqueeze(1)
        for conv, bn in [(self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3), (self.conv4, self.bn4)]:
            x = F.max_pool1d(F.relu(bn(conv(x))), 4)
        return self.fc1(x.mean(dim=2))


class FramePool(torch.nn.Module):
    """A video detector: an image backbone on every frame, its pooled features averaged over
    time, then the backbone's classifier (the plugin's image architectures on video input)."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, x):  # [B, T, 3, H, W], normalised
        b, t = x.shape[:2]
        m = self.backbone
        y = m.maxpool(m.relu(m.bn1(m.conv1(x.flatten(0, 1)))))
        y = m.layer4(m.layer3(m.layer2(m.layer1(y))))
        feats = torch.flatten(m.avgpool(y), 1).view(b, t, -1).mean(dim=1)
        return m.fc(feats)

    def state_dict(self, *a, **k):
        return self.backbone.state_dict(*a, **k)

    def load_state_dict(self, sd, *a, **k):
        return self.backbone.load_state_dict(sd, *a, **k)


def input_floats(seed: int, n: int) -> np.ndarray:
    """Waveform samples in [-1, 1): float32 of (top 24 bits) / 2^23 - 1."""
    return uniform_raw(seed, n).astype(np.float32)


def uniform_raw(seed: int, n: int) -> np.ndarray:
    key = np.uint64(seed)
    with np.errstate(over="ignore"):
        z = splitmix(key + np.arange(n, dtype=np.uint64))
    return (z >> np.uint64(40)).astype(np.float64) / 8388608.0 - 1.0


def input_bytes(seed: int, n: int) -> np.ndarray:
    key = np.uint64(seed)
    with np.errstate(over="ignore"):
        z = splitmix(key + np.arange(n, dtype=np.uint64))
    return (z >> np.uint64(56)).astype(np.uint8)


def case(name, model, seed, shape, input_seed, arch=None, extra=None):
    """`shape`: [B, 3, H, W] images, [B, T, 3, H, W] video frames (uint8, normalised as the
    plugin does), or [B, T] waveforms (float32 in [-1, 1))."""
    model.eval()
    sd = fill(model, seed)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.safetensors")
        save_file(sd, path)
        digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    n = int(np.prod(shape))
    if len(shape) == 2:
        xf = torch.from_numpy(input_floats(input_seed, n).reshape(shape))
    else:
        x = input_bytes(input_seed, n).reshape(shape)
        view = [1] * (len(shape) - 3) + [3, 1, 1]
        xf = torch.from_numpy(x).float() / 255.0
        xf = (xf - torch.tensor(MEAN).view(view)) / torch.tensor(STD).view(view)
    with torch.no_grad():
        logits = model(xf)
    return {
        "name": name,
        "architecture": arch or name,
        "model": extra or {},
        "seed": seed,
        "input_seed": input_seed,
        "input_shape": list(shape),
        "mean": MEAN,
        "std": STD,
        "safetensors_sha256": digest,
        "tensors": len(sd),
        "logits": logits.double().tolist(),
    }


def resize_shortest_edge(img: np.ndarray, target_h: int, target_w: int) -> np.ndarray:
    """gasbench's ResizeShortestEdge (processing/transforms.py at 2e3ee30): centre crop to the
    target aspect ratio, then cv2.resize INTER_LINEAR to exactly target_h x target_w."""
    import cv2

    h, w = img.shape[:2]
    scale = min(h / target_h, w / target_w)
    crop_h = min(int(round(scale * target_h)), h)
    crop_w = min(int(round(scale * target_w)), w)
    i = (h - crop_h) // 2
    j = (w - crop_w) // 2
    img = img[i : i + crop_h, j : j + crop_w, :]
    return cv2.resize(img, (target_w, target_h), interpolation=cv2.INTER_LINEAR)


def resize_case(src_h, src_w, target_h, target_w, seed):
    img = input_bytes(seed, src_h * src_w * 3).reshape(src_h, src_w, 3)
    out = resize_shortest_edge(img, target_h, target_w)
    case = {"src": [src_h, src_w], "target": [target_h, target_w], "seed": seed,
            "sha256": hashlib.sha256(out.tobytes()).hexdigest()}
    if out.size <= 4096:
        case["pixels"] = out.reshape(-1).tolist()
    return case


def build():
    torch.manual_seed(0)
    tv = torchvision.models
    return {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "opencv": __import__("cv2").__version__,
        "resize": [
            resize_case(50, 70, 32, 32, 11),
            resize_case(61, 45, 40, 56, 12),
            resize_case(120, 90, 17, 23, 13),
            resize_case(33, 33, 64, 64, 14),
            resize_case(7, 300, 5, 41, 15),
            resize_case(480, 640, 224, 224, 16),
            resize_case(375, 500, 256, 192, 17),
        ],
        "cases": [
            case("resnet18", tv.resnet18(num_classes=2), 18, [3, 3, 112, 144], 1),
            case("resnet34", tv.resnet34(num_classes=3), 34, [2, 3, 64, 64], 2),
            case("resnet50", tv.resnet50(num_classes=1), 50, [2, 3, 96, 80], 3),
            case("convnext_tiny", tv.convnext_tiny(num_classes=2), 7, [2, 3, 64, 64], 4),
            case("vit", tv.VisionTransformer(image_size=64, patch_size=16, num_layers=2, num_heads=4,
                                             hidden_dim=64, mlp_dim=128, num_classes=2), 16, [2, 3, 64, 64], 5,
                 extra={"patch_size": 16, "num_layers": 2, "num_heads": 4, "hidden_dim": 64, "mlp_dim": 128}),
            case("m5", M5(n_output=2), 5, [3, 16000], 6),
            case("video_resnet18", FramePool(tv.resnet18(num_classes=2)), 19, [2, 4, 3, 48, 64], 7, arch="resnet18"),
        ],
    }


def main():
    out = build()
    path = os.path.join(ROOT, "parity.json")
    if "--check" in sys.argv:
        old = json.load(open(path))
        for a, b in zip(old["cases"], out["cases"]):
            assert a["safetensors_sha256"] == b["safetensors_sha256"], a["name"]
            worst = np.max(np.abs(np.array(a["logits"]) - np.array(b["logits"])))
            scale = np.max(np.abs(np.array(a["logits"])))
            assert worst <= 1e-5 * scale, (a["name"], worst)
            assert old["resize"] == out["resize"], "resize outputs differ"
        print("detector parity fixtures reproduce")
        return
    os.makedirs(ROOT, exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    for c in out["cases"]:
        print(c["name"], c["safetensors_sha256"][:16], np.array(c["logits"]).round(4).tolist())


if __name__ == "__main__":
    main()
