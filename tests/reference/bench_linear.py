#!/usr/bin/env python3
"""The peers of `arena-linear-bench`: one linear layer per shape (`rows x d_in` times a
`[d_in, d_out]` weight, plus the bias, then exact GELU for `:gelu`) in PyTorch, ONNX Runtime and
OpenVINO, on the numbers arena multiplies.

For shape i with key K (--keys), the input, weight and bias are the top 24 bits of
splitmix64(key + j) over 2^23, minus 1 (uniform in [-1, 1), exact in f32), times 1, 1/32 and
1/8, with keys K, K + 2^34 and K + 2^35; the weight is row-major `[d_in, d_out]` (arena's
layout), so torch gets its transpose.

- `torch`: `torch.addmm` into a preallocated output (MKL's sgemm in the PyPI wheels), then
  `gelu_` in place, under inference_mode, `--threads` intra-op threads.
- `onnxruntime`: `nn.Sequential(nn.Linear, nn.GELU)` exported as the detector bench exports its
  networks (TorchScript exporter, opset 17) on a `[1, rows, d_in]` input, so that the graph is
  the ViT's MatMul + Add (+ erf GELU, which ORT fuses into BiasGelu); the CPU execution provider,
  `--threads` intra-op threads, one inter-op thread, ORT_ENABLE_ALL, the output bound to a
  preallocated array.
- `openvino`: the same ONNX file on the CPU, INFERENCE_PRECISION_HINT=f32,
  INFERENCE_NUM_THREADS=`--threads`, one stream, the latency hint.

Each peer runs every shape once to warm up, keeping 257 output values (flat indices
i * (len - 1) // 256), which the Rust side compares with its own. Then it takes turns with the
caller: `{"ready": true}`, and for every line on stdin --iters calls of every shape on each
peer in turn (half a second between peers), printing `{"round": ...}`. At the end of stdin, one
JSON line: per peer its GFLOP/s per shape and round, its compared outputs, version and threads.
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

from detector_parity import splitmix

p = argparse.ArgumentParser()
p.add_argument("--shapes", required=True, help="comma-separated ROWSxD_INxD_OUT[:gelu]")
p.add_argument("--keys", required=True, help="comma-separated: each shape's input key")
p.add_argument("--iters", type=int, default=5)
p.add_argument("--threads", type=int, default=os.cpu_count())
p.add_argument("--peers", default="torch,onnxruntime,openvino")
a = p.parse_args()
torch.set_num_threads(a.threads)


def values(key: int, n: int, scale: float) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = splitmix(np.uint64(key) + np.arange(n, dtype=np.uint64))
    return ((z >> np.uint64(40)).astype(np.float64) / 8388608.0 - 1.0).astype(np.float32) * np.float32(scale)


shapes = []
for spec, key in zip(a.shapes.split(","), a.keys.split(",")):
    dims, _, then = spec.partition(":")
    rows, d_in, d_out = (int(v) for v in dims.split("x"))
    key = int(key)
    shapes.append({
        "rows": rows, "d_in": d_in, "d_out": d_out, "gelu": then == "gelu",
        "x": values(key, rows * d_in, 1.0).reshape(rows, d_in),
        "w": values(key + (1 << 34), d_in * d_out, 1.0 / 32).reshape(d_in, d_out),
        "b": values(key + (2 << 34), d_out, 1.0 / 8),
    })

tmp = tempfile.TemporaryDirectory()


def onnx_file(i, s):
    """Shape i's layer as ONNX, on a [1, rows, d_in] input."""
    path = os.path.join(tmp.name, f"linear{i}.onnx")
    if not os.path.exists(path):
        lin = torch.nn.Linear(s["d_in"], s["d_out"])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(s["w"].T.copy()))
            lin.bias.copy_(torch.from_numpy(s["b"]))
        m = torch.nn.Sequential(lin, torch.nn.GELU()) if s["gelu"] else torch.nn.Sequential(lin)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(m.eval(), (torch.from_numpy(s["x"][None]),), path, input_names=["x"],
                          output_names=["y"], opset_version=17, dynamo=False)
    return path


def peer_torch():
    runs = []
    for s in shapes:
        x, b = torch.from_numpy(s["x"]), torch.from_numpy(s["b"])
        wt = torch.from_numpy(s["w"].T.copy())
        y = torch.empty(s["rows"], s["d_out"])

        def run(x=x, wt=wt, b=b, y=y, gelu=s["gelu"]):
            with torch.inference_mode():
                torch.addmm(b, x, wt.t(), out=y)
                if gelu:
                    torch.ops.aten.gelu_(y)
            return y.numpy()

        runs.append(run)
    return runs, f"torch {torch.__version__}", torch.get_num_threads()


def peer_onnxruntime():
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    runs = []
    for i, s in enumerate(shapes):
        sess = ort.InferenceSession(onnx_file(i, s), so, providers=["CPUExecutionProvider"])
        x = s["x"][None]
        y = np.empty((1, s["rows"], s["d_out"]), np.float32)
        bind = sess.io_binding()
        bind.bind_cpu_input("x", x)
        bind.bind_output("y", "cpu", 0, np.float32, list(y.shape), y.ctypes.data)

        def run(sess=sess, bind=bind, y=y):
            sess.run_with_iobinding(bind)
            return y

        runs.append(run)
    return runs, f"onnxruntime {ort.__version__} (CPU EP)", a.threads


def peer_openvino():
    import openvino as ov

    core = ov.Core()
    runs = []
    for i, s in enumerate(shapes):
        compiled = core.compile_model(core.read_model(onnx_file(i, s)), "CPU", {
            "INFERENCE_PRECISION_HINT": "f32",
            "INFERENCE_NUM_THREADS": a.threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
        })
        hint = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
        if "32" not in hint:
            sys.exit(f"openvino runs {hint}, not f32")
        req = compiled.create_infer_request()
        x = s["x"][None]

        def run(req=req, x=x):
            req.infer({0: x})
            return req.get_output_tensor(0).data

        runs.append(run)
    return runs, f"openvino {ov.__version__}", a.threads


def sampled(y):
    flat = np.asarray(y, dtype=np.float32).reshape(-1)
    return [float(flat[i * (flat.size - 1) // 256]) for i in range(257)]


peers = []
for name in a.peers.split(","):
    runs, version, threads = globals()[f"peer_{name}"]()
    outs = [sampled(run()) for run in runs]
    peers.append({"name": name, "runs": runs, "version": version, "threads": threads, "samples": outs,
                  "gflops": [[] for _ in shapes]})

print(json.dumps({"ready": True}), flush=True)
for _ in sys.stdin:
    for pe in peers:
        for s, run, rates in zip(shapes, pe["runs"], pe["gflops"]):
            t0 = time.perf_counter()
            for _ in range(a.iters):
                run()
            rates.append(2 * s["rows"] * s["d_in"] * s["d_out"] * a.iters / (time.perf_counter() - t0) / 1e9)
        time.sleep(0.5)
    print(json.dumps({"round": {pe["name"]: [r[-1] for r in pe["gflops"]] for pe in peers}}), flush=True)
print(json.dumps({"peers": [{k: v for k, v in pe.items() if k != "runs"} for pe in peers]}), flush=True)
