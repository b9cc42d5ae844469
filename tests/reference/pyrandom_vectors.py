#!/usr/bin/env python3
"""Vectors of CPython's `random.Random` (stdlib only) for host/src/pyrandom.rs: seeds of
several sizes (including a 256-bit sha256 digest as the subnets use), then getrandbits, random,
randint, shuffle, sample and choice. Writes tests/golden/pyrandom.json; `--check` fails if the file differs."""

import hashlib
import json
import os
import random
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden", "pyrandom.json")


def vectors():
    seeds = [0, 1, 42, 2**32, 2**64 - 1, int(hashlib.sha256(b"0x4e7a1f").hexdigest(), 16)]
    out = []
    for s in seeds:
        r = random.Random(s)
        case = {"seed_hex": format(s, "x")}
        case["bits32"] = [r.getrandbits(32) for _ in range(5)]
        case["bits7"] = [r.getrandbits(7) for _ in range(5)]
        case["bits40"] = [r.getrandbits(40) for _ in range(3)]
        case["random"] = [r.random() for _ in range(3)]
        case["randint_0_99"] = [r.randint(0, 99) for _ in range(8)]
        case["randint_big"] = [r.randint(5, 10**12) for _ in range(3)]
        x = list(range(20))
        r.shuffle(x)
        case["shuffle20"] = x
        # (n, k) over both of sample()'s branches: the pool (n <= setsize) and the rejection set.
        case["sample"] = [[n, k, r.sample(range(n), k)] for n, k in [(10, 3), (21, 5), (30, 5), (85, 20), (100, 20), (850, 7), (5, 5), (1, 0)]]
        case["choice"] = [r.choice(range(n)) for n in (1, 3, 14, 850)]
        out.append(case)
    return out


def main():
    text = json.dumps(vectors(), indent=1) + "\n"
    if "--check" in sys.argv:
        if open(OUT).read() != text:
            sys.exit(f"{OUT} differs from what this script produces; rerun it")
        return
    with open(OUT, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
