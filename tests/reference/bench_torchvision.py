#!/usr/bin/env python3
"""The peers of `arena-detector-bench`: PyTorch (torchvision), ONNX Runtime and OpenVINO on the
same safetensors weights and inputs.

Loads the weights into torchvision's network (ResNet, ConvNeXt, or a VisionTransformer of the
shape given), builds the same uint8 inputs (splitmix64 bytes, as tests/reference/detector_parity.py),
normalises them as the plugin does, and prepares each peer in --peers (one warm-up batch, whose
logits it keeps):

- `torch`: the module under torch.inference_mode, `--threads` intra-op threads.
- `onnxruntime`: the module exported to ONNX (opset 17, dynamic batch), the CPU execution
  provider with `--threads` intra-op threads, one inter-op thread, ORT_ENABLE_ALL.
- `openvino`: the same ONNX file compiled for the CPU with INFERENCE_PRECISION_HINT=f32 (on CPUs
  with AVX512_BF16 or AMX OpenVINO otherwise runs bf16: another computation),
  INFERENCE_NUM_THREADS=`--threads`, one stream, the latency hint.

Then it takes turns with the caller, so that a host whose speed drifts slows every side alike:
it prints the line `{"ready": true}`, and for every line it reads on stdin it times --iters
batches of each peer in turn (half a second apart, so that no peer's spinning threads run into
the next side's time) and prints `{"round": {peer: images/s, ...}}`. At the end of stdin it
prints the result as one JSON line: the FLOPs per image that torch's FlopCounterMode counts
(convolutions and matrix products, 2 per multiply-add), and per peer its images/s of every round,
the warm-up batch's logits (which the Rust side compares with its own), its version, threads and
precision.
"""

import argparse
import json
import os
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
import torchvision
from safetensors.torch import load_file
from torch.utils.flop_counter import FlopCounterMode

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
p.add_argument("--threads", type=int, default=os.cpu_count())
p.add_argument("--peers", default="torch", help="comma-separated: torch, onnxruntime, openvino")
p.add_argument("--vit", default="16,12,6,384,1536",
               help="for --arch vit: patch_size,num_layers,num_heads,hidden_dim,mlp_dim")
a = p.parse_args()

torch.set_num_threads(a.threads)
if a.arch == "vit":
    patch, layers, heads, hidden, mlp = (int(v) for v in a.vit.split(","))
    model = torchvision.models.VisionTransformer(
        image_size=a.height, patch_size=patch, num_layers=layers, num_heads=heads,
        hidden_dim=hidden, mlp_dim=mlp, num_classes=a.classes)
else:
    model = getattr(torchvision.models, a.arch)(num_classes=a.classes)
model.load_state_dict(load_file(a.weights), strict=True)
model = model.eval()
n = a.batch * 3 * a.height * a.width
x = input_bytes(a.input_seed, n).reshape(a.batch, 3, a.height, a.width)
mean = torch.tensor(MEAN).view(1, 3, 1, 1)
std = torch.tensor(STD).view(1, 3, 1, 1)
x = (torch.from_numpy(x).float() / 255.0 - mean) / std

# Counted with autograd on, so that nn.MultiheadAttention takes its counted (non-fused) path.
with FlopCounterMode(display=False) as counter:
    model(x[:1])
flops = counter.get_total_flops()


def rate(run):
    """Images/s of --iters batches of `run`."""
    t0 = time.perf_counter()
    for _ in range(a.iters):
        run()
    return a.batch * a.iters / (time.perf_counter() - t0)


def peer_torch():
    m = model.to(a.device)
    xd = x.to(a.device)

    def run():
        with torch.inference_mode():
            out = m(xd).float().cpu().numpy()
        return out

    return run, f"torch {torch.__version__}, torchvision {torchvision.__version__}", torch.get_num_threads(), "f32"


tmp = tempfile.TemporaryDirectory()
onnx_path = os.path.join(tmp.name, "model.onnx")


def onnx_file():
    """The module as ONNX (opset 17, dynamic batch), by torch's TorchScript-based exporter."""
    if not os.path.exists(onnx_path):
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(model.cpu(), (x[:1],), onnx_path, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17,
                          dynamo=False)
    return onnx_path


def peer_onnxruntime():
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(onnx_file(), so, providers=["CPUExecutionProvider"])
    xn = x.numpy()
    return lambda: sess.run(None, {"x": xn})[0], f"onnxruntime {ort.__version__} (CPU EP)", a.threads, "f32"


def peer_openvino():
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(core.read_model(onnx_file()), "CPU", {
        "INFERENCE_PRECISION_HINT": "f32",
        "INFERENCE_NUM_THREADS": a.threads,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
    })
    req = compiled.create_infer_request()
    xn = x.numpy()
    out = compiled.output(0)
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")
    precision = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
    return lambda: req.infer({0: xn})[out], f"openvino {ov.__version__}", a.threads, precision


def say(obj):
    print(json.dumps(obj), flush=True)


runs = {"torch": peer_torch, "onnxruntime": peer_onnxruntime, "openvino": peer_openvino}
peers = []
for name in a.peers.split(","):
    if name not in runs:
        raise SystemExit(f"unknown peer {name!r} (torch, onnxruntime, openvino)")
    if name != "torch" and a.device != "cpu":
        raise SystemExit(f"{name} runs on the CPU here; --device is {a.device}")
    run, version, threads, precision = runs[name]()
    logits = np.asarray(run(), dtype=np.float64)  # the warm-up batch
    peers.append({"name": name, "run": run, "images_per_s": [], "logits": logits.tolist(),
                  "version": version, "threads": threads, "precision": precision})
say({"ready": True})
for _ in sys.stdin:
    for peer in peers:
        peer["images_per_s"].append(rate(peer["run"]))
        time.sleep(0.5)  # until the peer's spinning worker threads sleep, before the next side
    say({"round": {peer["name"]: peer["images_per_s"][-1] for peer in peers}})
for peer in peers:
    del peer["run"]
say({"flops_per_image": flops, "peers": peers})
