#!/usr/bin/env python3
"""gasbench's scoring of one modality run, written from its published rules (numpy only, no
arena code): model outputs to predictions and P(synthetic) (inference.py process_model_output,
float32 as numpy computes it), the weighted confusion matrix, binary MCC, Brier, cross-entropy,
the sn34 score (alpha 1.2, beta 1.8, geometric mean), accuracy (plain or weighted), provenance
weights (derive_provenance_weights) and the per-dataset caps (calculate_weighted_dataset_sampling).

Random outputs for random labels are scored and written to tests/fixtures/detector/metrics.json;
plugins/detector/tests/metrics.rs recomputes them with the plugin's code.

    python3 tests/reference/detector_metrics.py [--check]
"""

import json
import os
import sys

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "detector", "metrics.json")


def process_model_output(logits):
    logits = np.atleast_1d(np.asarray(logits, dtype=np.float32)).flatten()
    if len(logits) == 1:
        p = np.float32(1) / (np.float32(1) + np.exp(-logits[0]))
        return int(p > 0.5), [p]
    exp_x = np.exp(logits - np.max(logits))
    probs = exp_x / np.sum(exp_x)
    if len(logits) == 3:
        pred = 0 if int(np.argmax(probs)) == 0 else 1
    else:
        pred = int(np.argmax(probs))
    return pred, probs


def binary_probability(probs):
    if len(probs) == 3:
        return float(np.float32(1) - probs[0])
    if len(probs) == 2:
        return float(probs[1])
    return float(probs[0])


def provenance_class(name):
    if "-holdout-" in name:
        return "holdout"
    if "gasstation" in name:
        return "gasstation"
    return "public"


def provenance_weights(datasets, holdout, gasstation):
    shares = {"public": 1.0 - holdout - gasstation, "holdout": holdout, "gasstation": gasstation}
    classes = [provenance_class(d) for d in datasets]
    counts = {c: classes.count(c) for c in shares if classes.count(c) > 0}
    present = sum(shares[c] for c in counts)
    n = len(classes)
    return [shares[c] / present * n / counts[c] for c in classes]


def score(logits, labels, datasets, shares=None):
    preds, probs = [], []
    for l in logits:
        pred, p = process_model_output(l)
        preds.append(pred)
        probs.append(binary_probability(p))
    y = np.array(labels, dtype=np.float64)
    pr = np.array(preds)
    w = np.ones(len(y)) if shares is None else np.array(provenance_weights(datasets, *shares))
    tp = float(np.sum(w * ((pr == 1) & (y == 1))))
    tn = float(np.sum(w * ((pr == 0) & (y == 0))))
    fp = float(np.sum(w * ((pr == 1) & (y == 0))))
    fn = float(np.sum(w * ((pr == 0) & (y == 1))))
    denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    mcc = float((tp * tn - fp * fn) / denom) if denom != 0 else 0.0
    p = np.clip(np.array(probs, dtype=np.float64), 1e-7, 1 - 1e-7)
    brier = float(np.average((p - y) ** 2, weights=w))
    bce = float(np.average(-(y * np.log(p) + (1 - y) * np.log(1 - p)), weights=w))
    mcc_norm = max(0.0, min((mcc + 1.0) / 2.0, 1.0)) ** 1.2
    brier_score = max(0.0, (0.25 - brier) / 0.25) ** 1.8
    sn34 = float(max(0.0, min(max(1e-12, mcc_norm * brier_score) ** 0.5, 1.0)))
    correct = (pr == y).astype(np.float64)
    accuracy = float(correct.mean()) if shares is None else float(np.average(correct, weights=w))
    return {"accuracy": accuracy, "binary_mcc": mcc, "binary_brier": brier,
            "binary_cross_entropy": bce, "sn34_score": sn34, "predictions": preds, "p_synthetic": probs}


def caps(names, target, gasstation_weight=5.0):
    gs = [n for n in names if "gasstation" in n.lower()]
    regular = [n for n in names if "gasstation" not in n.lower()]
    if not gs:
        cap = min(2000, target // len(names))
        return [cap for _ in names]
    total_weight = len(regular) + len(gs) * gasstation_weight
    per_unit = target / total_weight
    regular_cap = int(per_unit)
    gs_cap = int(per_unit * gasstation_weight)
    even_share = max(1, target // (len(regular) + len(gs)))
    regular_min = min(100, even_share)
    gs_min = min(500, max(1, int(even_share * gasstation_weight)))
    regular_cap = min(2000, max(regular_min, regular_cap))
    gs_cap = min(10000, max(gs_min, gs_cap))
    return [gs_cap if "gasstation" in n.lower() else regular_cap for n in names]


def build():
    rng = np.random.default_rng(34)
    names = ["textures-real", "scenes-real", "gan-upsample", "image-holdout-1a2b3c4d", "gasstation-images"]
    cases = []
    for i, (classes, n, shares, quality) in enumerate([
        (2, 200, None, 1.5), (1, 150, None, 1.0), (3, 180, None, 2.0), (2, 240, (0.3, 0.2), 1.2),
        (3, 120, (0.25, 0.0), 0.5), (1, 60, (0.0, 0.4), 3.0), (2, 40, None, -1.0),
    ]):
        labels = rng.integers(0, 2, n).tolist()
        datasets = [names[j] for j in rng.integers(0, len(names), n)]
        base = rng.normal(0, 1.5, (n, classes)).astype(np.float32)
        signal = np.array([quality if l else -quality for l in labels], dtype=np.float32)
        if classes == 1:
            base[:, 0] += signal
        else:
            base[:, -1] += signal
        if i == 1:
            base[:5] = 0.0  # sigmoid(0) = 0.5 exactly: predicted real
        logits = base.tolist()  # float32 values, exactly representable in JSON doubles
        cases.append({"logits": logits, "labels": labels, "datasets": datasets,
                      "shares": shares, "expected": score(base, labels, datasets, shares)})
    cap_cases = []
    for names_n, target in [(["a", "b", "gasstation-x"], 5000), ([f"d{i}" for i in range(170)] + ["gasstation-i"], 55000),
                            ([f"v{i}" for i in range(255)] + ["gasstation-v"], 26000), ([f"s{i}" for i in range(50)], 100),
                            ([f"s{i}" for i in range(30)] + ["gasstation-a", "gasstation-b"], 100)]:
        cap_cases.append({"names": names_n, "target": target, "caps": caps(names_n, target)})
    return {"numpy": np.__version__, "cases": cases, "caps": cap_cases}


def same(a, b, path="$"):
    """Equal up to float32 precision: numpy's float32 exp differs across versions and CPUs in the
    last bit."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert abs(a - b) <= 1e-6 * max(1.0, abs(b)), f"{path}: {a} != {b}"
    elif path != "$.numpy":
        assert a == b, f"{path}: {a} != {b}"


def main():
    out = build()
    if "--check" in sys.argv:
        same(json.loads(json.dumps(out)), json.load(open(OUT)))
        print("detector metric fixtures reproduce")
        return
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    for c in out["cases"]:
        e = c["expected"]
        print({k: round(e[k], 6) for k in ("accuracy", "binary_mcc", "binary_brier", "sn34_score")})


if __name__ == "__main__":
    main()
