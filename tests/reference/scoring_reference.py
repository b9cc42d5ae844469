#!/usr/bin/env python3
"""Independent reference for arena's scoring rules, written from shared/reference/ (the facts of
taoverse SN9/SN37, Dippy SN11 V-A and gasbench SN34), not from arena's Rust code.

It draws random rounds (seeded), scores them with the reference rules in plain float64 Python,
and writes tests/golden/scoring.json. `cargo test -p arena-host --test golden` feeds the same
rounds through arena's competition files (competitions/*.toml) and compares every number
(relative 1e-12) and every u16 exactly.

    python3 tests/reference/scoring_reference.py            # rewrite the golden file
    python3 tests/reference/scoring_reference.py --check    # fail if the file is out of date
    python3 tests/reference/scoring_reference.py --round ROUND.json --competition roleplay \
        --registered N                                       # one arena round's weights

Standard library only.
"""

import argparse
import json
import math
import os
import random
import sys

SEED = 20261122
U16_MAX = 65535
INF = math.inf


# ---------------------------------------------------------------- taoverse (SN9 / SN37) ----
def inverse_exponential(score, ceiling):
    # taoverse normalization.py: 1 at or above the ceiling.
    if score >= ceiling:
        return 1.0
    return (1 - math.exp(-score / ceiling)) / (1 - math.exp(-1))


def normalize(score, norm):
    if norm is None:
        return score
    kind, arg = norm
    if kind == "inverse_exponential":
        return inverse_exponential(score, arg)
    raise ValueError(kind)


class LinearDecay:
    def __init__(self, start, end, decay_blocks):
        self.start, self.end, self.decay_blocks = start, end, decay_blocks

    def compute_epsilon(self, current_block, model_block):
        block_difference = max(current_block - model_block, 0)
        block_adjustment = min(block_difference / self.decay_blocks, 1)
        return self.start - block_adjustment * (self.start - self.end)


class FixedEpsilon:
    def __init__(self, epsilon):
        self.epsilon = epsilon

    def compute_epsilon(self, current_block, model_block):
        return self.epsilon


def taoverse_score(tasks, raw):
    """score = sum of normalize(raw) * weight; any failed task makes the model score inf."""
    if any(raw[name] is None for name, _, _ in tasks):
        return INF
    total_weight = sum(w for _, w, _ in tasks)
    score = 0
    for name, weight, norm in tasks:
        w = weight if math.isclose(total_weight, 1.0) else weight / total_weight
        score += normalize(raw[name], norm) * w
    return score


def taoverse_iswin(loss_i, loss_j, block_i, block_j, eps, current_block):
    loss_i = (1 - eps.compute_epsilon(current_block, block_i)) * loss_i if block_i < block_j else loss_i
    loss_j = (1 - eps.compute_epsilon(current_block, block_j)) * loss_j if block_j < block_i else loss_j
    return loss_i < loss_j


def compute_wins(uids, score, block, iswin, single):
    win_rate = {}
    for uid_i in uids:
        wins = matches = 0
        for uid_j in uids:
            if uid_i == uid_j:
                continue
            matches += 1
            wins += 1 if iswin(score[uid_i], score[uid_j], block[uid_i], block[uid_j]) else 0
        win_rate[uid_i] = wins / matches if matches > 0 else single
    return win_rate


def compute_competitive_uids(score, block, eps):
    fully_decayed_epsilon = 1 - eps.compute_epsilon(current_block=math.inf, model_block=0)
    decayed = {uid: score[uid] * fully_decayed_epsilon for uid in block}
    kept = []
    for uid, loss in score.items():
        earlier = [i for i, b in block.items() if i != uid and b <= block[uid]]
        if all(loss < decayed[o] for o in earlier):
            kept.append(uid)
    return kept


def softmax(values, temperature):
    z = [v / temperature for v in values]
    m = max(z)
    if m == -INF:
        return [0.0 for _ in z]
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    return [v / s for v in e]


def normalized(d):
    s = sum(d.values())
    out = {}
    for k, v in d.items():
        x = v / s if s != 0 else math.nan
        out[k] = x if math.isfinite(x) else 0.0
    return out


def record_ema(old, new, alpha):
    # CompetitionTracker.record_competition_weights: alpha weights the OLD value.
    new = normalized(new)
    if old is None:
        return new
    uids = sorted(set(old) | set(new))
    return {u: alpha * old.get(u, 0.0) + (1 - alpha) * new.get(u, 0.0) for u in uids}


def threshold(w, min_weight):
    if min_weight <= 0:
        return dict(w)
    w = normalized(w)
    w = {u: (0.0 if v < min_weight else v) for u, v in w.items()}
    return normalized(w)


def subnet_weights(parts):
    total = {}
    for share, w in parts:
        for u, v in sorted(w.items()):
            total[u] = total.get(u, 0.0) + v * share
    return normalized(dict(sorted(total.items())))


def weights_for_emit(weights):
    # bittensor convert_weights_and_uids_for_emit: max-upscale, round (half to even), drop 0.
    uids = sorted(weights)
    values = [weights[u] for u in uids]
    if sum(values) == 0:
        return []
    max_weight = float(max(values))
    out = []
    for uid, v in zip(uids, values):
        q = round(float(v) / max_weight * int(U16_MAX))
        if q != 0:
            out.append([uid, q])
    return out


# ---------------------------------------------------------------------- SN11 (Dippy V-A) ----
def dippy_total(raw):
    if any(v is None for v in raw.values()):
        return 0.0  # invalid entries count with score 0
    q, c = raw["quality"], raw["creativity"]
    adjusted = q / (1 + math.exp(8 * (q - 0.25)) * math.exp(-8 * (c - 0.5)))
    latency = 1 - raw["latency"] * 0.95 / 10000  # avg_latency = mean * 0.95, MAX_AVG_LATENCY 10000 ms
    coh_bin = 1 if raw["coherence"] >= 0.95 else 0
    post_eval_score = 1
    return (0.84 * adjusted + 0.08 * latency + 0.08 * raw["vibe"]) * coh_bin * post_eval_score


def dippy_iswin(score_i, score_j, block_i, block_j):
    penalty = 0.03
    score_i = (1 - penalty) * score_i if block_i > block_j else score_i
    score_j = (1 - penalty) * score_j if block_j > block_i else score_j
    return score_i > score_j


# --------------------------------------------------------------------- SN34 (gasbench) ----
def sn34(p, y, w):
    pred = [1 if pi > 0.5 else 0 for pi in p]
    tp = sum(wi for pi, yi, wi in zip(pred, y, w) if pi == 1 and yi == 1)
    tn = sum(wi for pi, yi, wi in zip(pred, y, w) if pi == 0 and yi == 0)
    fp = sum(wi for pi, yi, wi in zip(pred, y, w) if pi == 1 and yi == 0)
    fn = sum(wi for pi, yi, wi in zip(pred, y, w) if pi == 0 and yi == 1)
    denom = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    mcc = (tp * tn - fp * fn) / denom if denom != 0 else 0.0
    clipped = [min(max(pi, 1e-7), 1 - 1e-7) for pi in p]
    brier = sum(wi * (ci - yi) ** 2 for ci, yi, wi in zip(clipped, y, w)) / sum(w)
    mcc_norm = max(0.0, min((mcc + 1.0) / 2.0, 1.0)) ** 1.2
    brier_score = max(0.0, (0.25 - brier) / 0.25) ** 1.8
    final = (max(1e-12, mcc_norm * brier_score)) ** 0.5
    return float(max(0.0, min(final, 1.0)))


# ------------------------------------------------------------------------ competitions ----
SN9_B3_TASKS = [  # (name, weight, normalization): all TEXT_LOSS, NONE
    ("fineweb", 0.30, None),
    ("fineweb_edu2", 0.25, None),
    ("stackv2_dedup", 0.35, None),
    ("pes2ox", 0.05, None),
    ("finemath_3p", 0.03, None),
    ("infiwebmath_3p", 0.02, None),
]
SN37_INSTRUCT_TASKS = [
    ("synthetic_mmlu", 0.30, None),
    ("word_sorting", 0.05, ("inverse_exponential", 40)),
    ("fineweb", 0.35, ("inverse_exponential", 20)),
    ("if_eval_v2", 0.30, None),
]
SN37_REASONING_TASKS = [("synthetic_1_sft", 0.5, None), ("codeforces_cots", 0.5, None)]

RULES = {
    "pretraining-3b": dict(kind="pt", tasks=SN9_B3_TASKS, eps=LinearDecay(0.005, 0.0001, 14400),
                           temperature=0.01, alpha=0.5, threshold=0.0, single=1, delay=250, share=0.15),
    "finetuning-instruct-8b": dict(kind="ft", tasks=SN37_INSTRUCT_TASKS, eps=LinearDecay(0.05, 0.01, 7200),
                                   alpha=0.9, threshold=0.18, single=0, delay=1600, share=1.0),
    "finetuning-reasoning-3b": dict(kind="ft", tasks=SN37_REASONING_TASKS, eps=LinearDecay(0.05, 0.01, 21600),
                                    alpha=0.9, threshold=0.18, single=0, delay=460, share=1.0),
    "roleplay": dict(kind="dippy", temperature=0.075, delay=0, share=1.0),
    "deepfake-image": dict(kind="sn34", delay=0, share=0.4),
}


def score_round(comp, subs, block, old, registered=None):
    """One round of one competition; returns per-uid rows and the new EMA state and weights.
    `registered`: the metagraph size, for SN11, whose win rates count every registered uid."""
    rules = RULES[comp]
    eligible = sorted((s for s in subs if block - s["block"] >= rules["delay"]), key=lambda s: s["uid"])
    uids = [s["uid"] for s in eligible]
    blocks = {s["uid"]: s["block"] for s in eligible}
    rows = {}
    if rules["kind"] in ("pt", "ft"):
        totals = {s["uid"]: taoverse_score(rules["tasks"], s["tasks"]) for s in eligible}
        eps = rules["eps"]
        kept = compute_competitive_uids(totals, blocks, eps) if rules["kind"] == "pt" else uids

        def iswin(a, b, ba, bb):
            return taoverse_iswin(a, b, ba, bb, eps, block)

        wr_kept = compute_wins([u for u in uids if u in kept], totals, blocks, iswin, rules["single"])
        win_rate = {u: wr_kept.get(u, 0) for u in uids}
        if rules["kind"] == "pt":
            step = softmax([win_rate[u] for u in uids], rules["temperature"])
        else:
            best = max(win_rate.values()) if uids else 0
            ones = {u: 1.0 if win_rate[u] == best else 0.0 for u in uids}
            step = [normalized(ones)[u] for u in uids]
        step = dict(zip(uids, step))
        # A round with nothing to evaluate records nothing (the tracker keeps its old state).
        state = record_ema(old, step, rules["alpha"]) if uids else old
        weights = threshold(state or {}, rules["threshold"])
    elif rules["kind"] == "dippy":
        totals = {s["uid"]: dippy_total(s["tasks"]) for s in eligible}
        invalid = {s["uid"] for s in eligible if any(v is None for v in s["tasks"].values())}
        kept = uids
        # The registry holds every registered uid; those without a scored entry are invalid with
        # total 0 (and no commit block).
        absent = [-(i + 1) for i in range(registered - len(uids))]
        registry_scores = {**totals, **{a: 0 for a in absent}}
        registry_blocks = {**blocks, **{a: sys.maxsize for a in absent}}
        win_rate = compute_wins(uids + absent, registry_scores, registry_blocks, dippy_iswin, 0)
        for u in uids:
            if u in invalid or totals[u] == 0:
                win_rate[u] = -INF
        step = dict(zip(uids, softmax([win_rate[u] for u in uids], rules["temperature"])))
        # The reference zeroes self.weights before its EMA (alpha 0.9), then normalizes on emit.
        state = normalized({u: 0.9 * 0.0 + (1 - 0.9) * v for u, v in normalized(step).items()})
        weights = state
    else:  # sn34: winner-take-all on the sn34 score; a failed run scores nothing
        totals = {}
        for s in eligible:
            pr = s["predictions"]
            totals[s["uid"]] = 0.0 if pr is None else sn34(pr["p"], pr["y"], pr["w"])
        kept = uids
        best = max(totals.values()) if uids else 0
        win_rate = None
        ones = {u: 1.0 if totals[u] == best and best > 0 else 0.0 for u in uids}
        step = normalized(ones)
        state = record_ema(old, step, 0.0) if uids else old
        weights = state or {}
    for u in uids:
        rows[u] = {
            "total": totals[u],
            "competitive": u in kept,
            "step_weight": step[u],
            "weight": weights.get(u, 0.0),
        }
        if win_rate is not None:
            rows[u]["win_rate"] = win_rate[u]
    return rows, state, weights


# --------------------------------------------------------------------- random rounds ----
def draw_blocks(rng, n, current, delay):
    base = current - delay - rng.randint(0, 30000)
    blocks = [max(0, base + rng.randint(-20000, 20000)) for _ in range(n)]
    for i in range(n):  # equal blocks happen (same-block commits)
        if i and rng.random() < 0.15:
            blocks[i] = blocks[i - 1]
    return [min(b, current - delay) if rng.random() < 0.9 else current - rng.randint(0, delay) for b in blocks]


def draw_taoverse(rng, comp, n, current):
    rules = RULES[comp]
    blocks = draw_blocks(rng, n, current, rules["delay"])
    subs = []
    for i in range(n):
        tasks = {}
        for name, _, norm in rules["tasks"]:
            if name in ("synthetic_mmlu", "if_eval_v2"):
                tasks[name] = rng.random() if rng.random() < 0.8 else rng.choice([0.0, 1.0, 0.25])
            elif norm is not None:
                tasks[name] = rng.uniform(0.5, 1.3 * norm[1])
            else:
                tasks[name] = rng.uniform(1.2, 4.0)
        if rng.random() < 0.08:
            tasks[rng.choice(list(tasks))] = None
        subs.append(dict(uid=i * 3 + rng.randint(0, 2), block=blocks[i], tasks=tasks))
    for i in range(1, n):  # copies: equal totals, different blocks (epsilon decides)
        if rng.random() < 0.15:
            subs[i]["tasks"] = dict(subs[i - 1]["tasks"])
    for i in range(1, n):  # near-copies within epsilon
        if rng.random() < 0.2:
            f = 1 - rng.uniform(0, 0.06)
            subs[i]["tasks"] = {k: (None if v is None else v * f) for k, v in subs[i - 1]["tasks"].items()}
    return subs


def draw_dippy(rng, n, current):
    blocks = draw_blocks(rng, n, current, 0)
    subs = []
    for i in range(n):
        tasks = {
            "quality": rng.uniform(0.0, 0.9),
            "creativity": rng.uniform(0.0, 1.0),
            "latency": rng.uniform(20.0, 6000.0),
            "vibe": rng.uniform(0.0, 1.0),
            "coherence": rng.choice([1.0, 0.99, 0.97, 0.95, 0.949, 0.9]),
        }
        if rng.random() < 0.08:
            tasks[rng.choice(list(tasks))] = None
        subs.append(dict(uid=i * 2 + rng.randint(0, 1), block=blocks[i], tasks=tasks))
    for i in range(1, n):
        if rng.random() < 0.2:
            subs[i]["tasks"] = dict(subs[i - 1]["tasks"])
    return subs


def draw_sn34(rng, n, current):
    subs = []
    for i in range(n):
        m = rng.randint(20, 120)
        y = [rng.randint(0, 1) for _ in range(m)]
        skill = rng.uniform(-0.2, 0.45)
        p = []
        for yi in y:
            x = rng.uniform(0, 1) * 0.5 + (0.5 if yi else 0.0) * (skill * 2) + rng.uniform(-0.25, 0.25)
            p.append(min(max(x, 0.0), 1.0) if rng.random() < 0.9 else float(rng.choice([0.0, 1.0, 0.5])))
        w = [rng.choice([1.0, 1.0, 5.0, 0.37]) for _ in range(m)]
        if rng.random() < 0.1:
            y = [1] * m  # one class only: the MCC denominator is 0
        pred = None if rng.random() < 0.05 else {"p": p, "y": y, "w": w}
        subs.append(dict(uid=i, block=current - rng.randint(0, 5000), predictions=pred))
    if n > 1 and rng.random() < 0.3:
        subs[1]["predictions"] = subs[0]["predictions"]  # a tie: the winners split
    return subs


def case(rng, name, comp, draw, current, rounds):
    state = None
    out_rounds = []
    subs = draw(rng)
    registered = None
    if comp == "roleplay":  # the metagraph: full (256) or a few uids more than submitted
        registered = 256 if rng.random() < 0.5 else len(subs) + rng.randint(0, 12)
    for r in range(rounds):
        block = current + r * rng.randint(100, 3000)
        if r:  # later rounds: some scores move, and a challenger may arrive
            subs = [dict(s) for s in subs]
            for s in subs:
                if "tasks" in s and rng.random() < 0.3:
                    s["tasks"] = {k: (None if v is None else v * rng.uniform(0.97, 1.03)) for k, v in s["tasks"].items()}
            if "tasks" in subs[0] and RULES[comp]["kind"] in ("pt", "ft") and rng.random() < 0.8:
                # A copy of the leader, 0-8% better, committed just late enough to be evaluated:
                # epsilon decides whether it takes over, and the EMA then moves across the threshold.
                leader = out_rounds[-1]["expected"]["rows"]
                best = max(leader, key=lambda u: leader[u]["step_weight"]) if leader else str(subs[0]["uid"])
                base = next(s for s in subs if str(s["uid"]) == best)
                # Near the boundary the epsilon of that moment draws (either side of it).
                eps = RULES[comp]["eps"].compute_epsilon(block, base["block"])
                f = (1 - eps) * (1 + rng.uniform(-0.25, 0.25) * eps) if rng.random() < 0.7 else rng.uniform(0.92, 1.0)
                subs.append(dict(
                    uid=max(s["uid"] for s in subs) + 1,
                    block=block - RULES[comp]["delay"] - rng.randint(0, 800),
                    tasks={k: (None if v is None else v * f) for k, v in base["tasks"].items()},
                ))
        rows, state, weights = score_round(comp, subs, block, state, registered)
        share = 1.0  # one competition: the emission split renormalizes its share to 1
        final = subnet_weights([(share, weights)])
        out_rounds.append({
            "block": block,
            **({"registered": registered} if registered is not None else {}),
            "submissions": [{**s, "competition": comp, "hotkey": f"hk{s['uid']}"} for s in subs],
            "expected": {
                "rows": {str(u): row for u, row in rows.items()},
                "state": {str(u): v for u, v in (state or {}).items()},
                "weights": {str(u): v for u, v in final.items()},
                "u16": weights_for_emit(final),
            },
        })
    return {"name": name, "competitions": [comp], "rounds": out_rounds}


def split_case(rng):
    """Two competitions at one block with a validator's funding: taoverse get_subnet_weights."""
    block = 5_300_000
    a = draw_taoverse(rng, "pretraining-3b", 6, block)
    b = draw_taoverse(rng, "finetuning-reasoning-3b", 5, block)
    for s in b:
        s["uid"] += 100
    funding = {"pretraining-3b": 0.7, "finetuning-reasoning-3b": 0.2}
    rows_a, state_a, wa = score_round("pretraining-3b", a, block, None)
    rows_b, state_b, wb = score_round("finetuning-reasoning-3b", b, block, None)
    total = sum(funding.values())
    final = subnet_weights([(funding["pretraining-3b"] / total, wa), (funding["finetuning-reasoning-3b"] / total, wb)])
    subs = [{**s, "competition": "pretraining-3b", "hotkey": "x"} for s in a]
    subs += [{**s, "competition": "finetuning-reasoning-3b", "hotkey": "y"} for s in b]
    rows = {**{str(u): r for u, r in rows_a.items()}, **{str(u): r for u, r in rows_b.items()}}
    return {
        "name": "split-sn9-sn37",
        "competitions": ["pretraining-3b", "finetuning-reasoning-3b"],
        "funding": funding,
        "rounds": [{
            "block": block,
            "submissions": subs,
            "expected": {
                "rows": rows,
                "weights": {str(u): v for u, v in final.items()},
                "u16": weights_for_emit(final),
            },
        }],
    }


def build():
    rng = random.Random(SEED)
    taoverse = lambda comp: lambda r, n, block: draw_taoverse(r, comp, n, block)  # noqa: E731
    plan = [  # (cases, name, competition, most submissions, draw, block, rounds: (lo, hi) or 1)
        (12, "sn9-b3", "pretraining-3b", 9, taoverse("pretraining-3b"), 5_300_000, (1, 5)),
        (12, "sn37-instruct", "finetuning-instruct-8b", 9, taoverse("finetuning-instruct-8b"), 5_000_000, (2, 7)),
        (8, "sn37-reasoning", "finetuning-reasoning-3b", 8, taoverse("finetuning-reasoning-3b"), 5_400_000, (2, 6)),
        (12, "sn11-va", "roleplay", 10, draw_dippy, 4_000_000, 1),
        (10, "sn34-image", "deepfake-image", 6, draw_sn34, 6_000_000, 1),
    ]
    cases = []
    for count, prefix, comp, most, draw, block, rounds in plan:
        for i in range(count):
            n = rng.randint(1, most)
            r = rounds if rounds == 1 else rng.randint(*rounds)
            cases.append(case(rng, f"{prefix}-{i}", comp, lambda g, n=n, d=draw, b=block: d(g, n, b), block, r))
    cases.append(split_case(rng))
    return {
        "generator": "tests/reference/scoring_reference.py",
        "seed": SEED,
        "note": "non-finite floats are written as the strings \"inf\" and \"-inf\"",
        "cases": cases,
    }


def encode(x):
    if isinstance(x, float) and not math.isfinite(x):
        return "inf" if x > 0 else "-inf"
    if isinstance(x, dict):
        return {k: encode(v) for k, v in x.items()}
    if isinstance(x, list):
        return [encode(v) for v in x]
    return x


def decode(x):
    if x == "inf":
        return INF
    if x == "-inf":
        return -INF
    if isinstance(x, dict):
        return {k: decode(v) for k, v in x.items()}
    if isinstance(x, list):
        return [decode(v) for v in x]
    return x


def bench(path, repeat):
    """Times the reference's scoring of the golden rounds, per competition (best of `repeat`),
    for `cargo bench -p arena-host --bench scoring`, which runs the same rounds through arena."""
    import time
    with open(path) as f:
        cases = [c for c in decode(json.load(f))["cases"] if len(c["competitions"]) == 1]
    out = {}
    for comp in sorted({c["competitions"][0] for c in cases}):
        mine = [c for c in cases if c["competitions"][0] == comp]
        best = INF
        for _ in range(repeat):
            start = time.perf_counter()
            for c in mine:
                state = None
                for r in c["rounds"]:
                    _, state, weights = score_round(comp, r["submissions"], r["block"], state, r.get("registered"))
                    weights_for_emit(subnet_weights([(1.0, weights)]))
            best = min(best, time.perf_counter() - start)
        out[comp] = {"rounds": sum(len(c["rounds"]) for c in mine), "seconds": best}
    print(json.dumps(out))


def score_report(path, comp, registered):
    """Prints {uid: weight} (the reference's float weights) for one competition of an arena round
    report, from its raw task scores and commit blocks alone."""
    with open(path) as f:
        report = json.load(f)
    raw = report["raw"]
    subs = [
        {"uid": s["uid"], "block": s["block"], "tasks": s["tasks"]}
        for s in raw["submissions"]
        if s.get("competition", comp) == comp
    ]
    rows, _, weights = score_round(comp, subs, raw["block"], {}, registered=registered or len(subs))
    out = {str(u): {"total": r["total"], "win_rate": r.get("win_rate"), "weight": weights.get(u, 0.0)}
           for u, r in rows.items()}
    print(json.dumps(encode(out), indent=1, allow_nan=False))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the golden file differs")
    parser.add_argument("--bench", type=int, metavar="REPEAT", help="time scoring the golden rounds")
    parser.add_argument("--round", metavar="ROUND_JSON", help="score the raw scores of an `arena round --json` report")
    parser.add_argument("--competition", help="with --round: the competition (a key of RULES)")
    parser.add_argument("--registered", type=int, help="with --round: registered uids (SN11 win rates count them)")
    args = parser.parse_args()
    if args.round:
        return score_report(args.round, args.competition, args.registered)
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "golden", "scoring.json")
    if args.bench:
        return bench(path, args.bench)
    text = json.dumps(encode(build()), indent=1, allow_nan=False) + "\n"
    if args.check:
        with open(path) as f:
            if f.read() != text:
                sys.exit(f"{path} is out of date: run {sys.argv[0]}")
        print(f"{path} is up to date")
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
