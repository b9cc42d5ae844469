#!/usr/bin/env python3
"""ONNX Runtime's time per operator type on a torchvision network, for comparing with a profile of
arena's CPU path (`perf record` of `arena-detector-bench --python ''`): where a peer's time goes.

The network is built as `arena-detector-bench` builds it (the same shapes; random weights, which
do not change the work), exported as the bench's peers script exports it (opset 17, dynamic
batch, the TorchScript-based exporter) and run with the bench's session options: the CPU
execution provider, `--threads` intra-op threads, one inter-op thread, ORT_ENABLE_ALL. ORT's
own profiler records each node's kernel time; the output sums them per operator type, in
milliseconds per batch over `--runs` timed batches after two warm-up batches.

    /opt/refenv/bin/python scripts/peers/ort-op-profile.py --arch vit --batch 16 --threads 2

Needs torch, torchvision and onnxruntime (the reference venv); never run in CI.
"""
import argparse
import collections
import json
import os
import tempfile
import time
import warnings

import onnxruntime as ort
import torch
import torchvision

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--arch", default="vit", help="resnet18|resnet50|convnext_tiny|vit")
p.add_argument("--vit", default="16,12,12,768,3072",
               help="for --arch vit: patch_size,num_layers,num_heads,hidden_dim,mlp_dim")
p.add_argument("--batch", type=int, default=16)
p.add_argument("--size", type=int, default=224)
p.add_argument("--threads", type=int, default=os.cpu_count())
p.add_argument("--runs", type=int, default=4)
a = p.parse_args()

torch.manual_seed(0)
if a.arch == "vit":
    patch, layers, heads, hidden, mlp = (int(v) for v in a.vit.split(","))
    model = torchvision.models.VisionTransformer(
        image_size=a.size, patch_size=patch, num_layers=layers, num_heads=heads,
        hidden_dim=hidden, mlp_dim=mlp, num_classes=2)
else:
    model = getattr(torchvision.models, a.arch)(num_classes=2)
model = model.eval()
x = torch.randn(a.batch, 3, a.size, a.size)

tmp = tempfile.TemporaryDirectory()
path = os.path.join(tmp.name, "model.onnx")
warnings.filterwarnings("ignore")
torch.onnx.export(model, (x[:1],), path, input_names=["x"], output_names=["logits"],
                  dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17,
                  dynamo=False)

so = ort.SessionOptions()
so.intra_op_num_threads = a.threads
so.inter_op_num_threads = 1
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
so.enable_profiling = True
so.profile_file_prefix = os.path.join(tmp.name, "profile")
sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
xn = x.numpy()
for _ in range(2):
    sess.run(None, {"x": xn})
t0 = time.perf_counter()
for _ in range(a.runs):
    sess.run(None, {"x": xn})
wall = (time.perf_counter() - t0) / a.runs
events = json.load(open(sess.end_profiling()))

# The profile holds the warm-up batches too: every figure is per batch over all of them.
per_op = collections.Counter()
batches = 0
for e in events:
    if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
        per_op[e["args"]["op_name"]] += e["dur"]
    elif e.get("cat") == "Session" and e["name"] == "model_run":
        batches += 1
total = sum(per_op.values())
print(f"onnxruntime {ort.__version__}, {a.arch}, batch {a.batch}, {a.size}², {a.threads} threads: "
      f"{wall * 1e3:.0f} ms per timed batch (profiling on), {batches} batches profiled")
for op, us in per_op.most_common():
    print(f"  {op:24s} {us / batches / 1e3:9.1f} ms/batch  {100 * us / total:5.1f}%")
