#!/usr/bin/env python3
"""Independent reference for the perplexity plugin's task kinds, written from the subnets' and
tools' published code paths (transformers + torch, f32, CPU) and run on the project's tiny
models in tests/fixtures/lm-protocols/:

- SN9 text loss: tokenizer(text) + [eos], packed, cut into windows, remainder dropped, mean CE
  per window, mean over windows (pretraining `pretrain/dataset.py`, `eval/method.py`), also with
  the windows shuffled by `random.Random(seed)` and only the first few kept;
- SN37 text loss: tokenizer.encode(max_length, padding="max_length", truncation=True), no
  attention mask, CE over all positions with pads (finetuning `compute_text_loss`);
- lm-eval rolling loglikelihood (`get_rolling_token_windows` + `make_disjoint_window`), summed;
- Hugging Face strided perplexity (docs "Perplexity of fixed-length models");
- SN37 reference loss and multiple choice (chat template, greedy generation, answer regex);
- SN94-style held-out perplexity (token-weighted CE over rolling windows).

Writes tests/fixtures/lm-protocols/expected.json, which `plugins/perplexity/tests/protocols.rs`
compares with the plugin (relative error <= 1e-4; multiple-choice answers exactly). Regenerate:

    /opt/refenv/bin/python tests/reference/lm_protocols.py
"""

import json
import math
import os
import random
import re

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "lm-protocols")
MODELS = ["llama-40", "qwen2-120"]

SN9_LEN = 64
SN37_LEN = 48
ROLLING_LEN = 32
STRIDED_LEN = 32
STRIDE = 12
HELDOUT_LEN = 40


def rows(name):
    with open(os.path.join(HERE, name)) as f:
        return [json.loads(line) for line in f if line.strip()]


def mean_ce(model, ids):
    """Mean next-token CE of one sequence (no attention mask), as the subnets call the model."""
    logits = model(torch.tensor([ids])).logits[0].float()
    return float(torch.nn.functional.cross_entropy(logits[:-1], torch.tensor(ids[1:])))


def token_logprobs(model, inp):
    logits = model(torch.tensor([inp])).logits[0].float()
    return torch.log_softmax(logits, dim=-1)


def sn9(model, tok, texts):
    buf = []
    for t in texts:
        buf += tok(t, truncation=True)["input_ids"] + [tok.eos_token_id]
    windows = [buf[i : i + SN9_LEN] for i in range(0, len(buf) - SN9_LEN + 1, SN9_LEN)]
    losses = [mean_ce(model, w) for w in windows]
    # SN9 shuffles the batches with random.Random(seed) and keeps the first MAX_BATCHES (here 3,
    # seed 7 as the Rust test's task seed).
    kept = list(range(len(windows)))
    random.Random(7).shuffle(kept)
    kept = kept[:3]
    return sum(losses) / len(losses), len(windows), sum(losses[i] for i in kept) / len(kept)


def sn37(model, tok, texts, side):
    tok.truncation_side = side
    losses = []
    for t in texts:
        ids = tok.encode(t, max_length=SN37_LEN, padding="max_length", truncation=True)
        losses.append(mean_ce(model, ids))
    tok.truncation_side = "right"
    return sum(losses) / len(losses), losses


def rolling_windows(toks, prefix, max_len):
    # lm-eval get_rolling_token_windows(context_len=1) followed by make_disjoint_window.
    if not toks:
        return []
    out = []
    pred_len = max_len
    first = min(max_len, len(toks))
    out.append(([prefix] + toks[: first - 1], toks[:first]))
    predicted = first
    while predicted < len(toks):
        wl = min(len(toks) - predicted, pred_len)
        end = predicted + wl
        out.append((toks[end - max_len - 1 : end - 1], toks[end - wl : end]))
        predicted += wl
    return [(a[: len(a) - (len(b) - 1)], b) for a, b in out]


def rolling_ll(model, toks, prefix, max_len):
    total = 0.0
    for ctx, cont in rolling_windows(toks, prefix, max_len):
        inp = (ctx + cont)[-(max_len + 1) :][:-1]
        lp = token_logprobs(model, inp)
        n = len(cont)
        picked = lp[len(inp) - n :].gather(1, torch.tensor(cont)[:, None])
        total += float(picked.double().sum())
    return total


def strided(model, tok, texts):
    enc = tok("\n\n".join(texts))["input_ids"]
    nll_sum, n_tokens, prev_end = 0.0, 0, 0
    for begin in range(0, len(enc), STRIDE):
        end = min(begin + STRIDED_LEN, len(enc))
        trg_len = end - prev_end
        ids = torch.tensor([enc[begin:end]])
        labels = ids.clone()
        labels[:, :-trg_len] = -100
        loss = model(ids, labels=labels).loss
        num_valid = int((labels != -100).sum())
        num_loss = num_valid - 1
        nll_sum += float(loss) * num_loss
        n_tokens += num_loss
        prev_end = end
        if end == len(enc):
            break
    return nll_sum / n_tokens


def reference_loss(model, tok, pairs):
    losses = []
    for p in pairs:
        ctx = tok.apply_chat_template([{"role": "user", "content": p["context"]}], add_generation_prompt=True, tokenize=True)
        if isinstance(ctx, dict) or hasattr(ctx, "keys"):
            ctx = ctx["input_ids"]
        ref = tok.encode(p["reference"])
        ids = list(ctx) + list(ref)
        logits = model(torch.tensor([ids])).logits[0].float()
        shift_logits, shift_labels = logits[:-1], torch.tensor(ids[1:])
        r = len(ref)
        losses.append(float(torch.nn.functional.cross_entropy(shift_logits[-r:], shift_labels[-r:])))
    return sum(losses) / len(losses), losses


def multiple_choice(model, tok, rows_):
    wrong, responses = [], []
    for row in rows_:
        ids = tok.apply_chat_template([{"role": "user", "content": row["prompt"]}], add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        ids = torch.tensor([list(ids)])
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=20,
            do_sample=False,
            repetition_penalty=1.1,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.eos_token_id,
        )
        response = tok.decode(out[0][ids.shape[1] :], skip_special_tokens=True)
        words = re.sub(r"\W", " ", response).split()
        matches = [w for w in words if w in ["A", "B", "C", "D"]]
        wrong.append(0.0 if matches and matches[0] == row["answer"] else 1.0)
        responses.append(response)
    return sum(wrong) / len(wrong), wrong, responses


def main():
    torch.manual_seed(0)
    texts = [r["text"] for r in rows("docs.jsonl")]
    out = {}
    for name in MODELS:
        d = os.path.join(HERE, name)
        tok = AutoTokenizer.from_pretrained(d)
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
        prefix = model.config.bos_token_id if model.config.bos_token_id is not None else model.config.eos_token_id
        with torch.no_grad():
            r = {}
            r["encode_first_doc"] = tok(texts[0])["input_ids"]
            r["sn9_loss"], r["sn9_windows"], r["sn9_max3_loss"] = sn9(model, tok, texts)
            r["sn37_left_loss"], r["sn37_left_per_doc"] = sn37(model, tok, texts, "left")
            r["sn37_right_loss"], _ = sn37(model, tok, texts, "right")
            docs = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
            lls = [rolling_ll(model, toks, prefix, ROLLING_LEN) for toks in docs]
            ntok = sum(len(x) for x in docs)
            nbytes = sum(len(t.encode("utf-8")) for t in texts)
            nwords = sum(len(re.split(r"\s+", t)) for t in texts)
            r["rolling_nll_sum"] = -sum(lls)
            r["rolling_tokens"] = ntok
            r["rolling_bits_per_byte"] = -sum(lls) / nbytes / math.log(2)
            r["rolling_word_perplexity"] = math.exp(-sum(lls) / nwords)
            r["rolling_byte_perplexity"] = math.exp(-sum(lls) / nbytes)
            r["strided_loss"] = strided(model, tok, texts)
            heldout = [tok(t)["input_ids"] for t in texts]
            hl = [rolling_ll(model, toks, prefix, HELDOUT_LEN) for toks in heldout]
            r["heldout_cross_entropy_nats"] = -sum(hl) / sum(len(x) for x in heldout)
            r["heldout_ppl"] = math.exp(r["heldout_cross_entropy_nats"])
            r["reference_loss"], r["reference_per_sample"] = reference_loss(model, tok, rows("reference.jsonl"))
            r["mc_fraction_wrong"], r["mc_wrong"], r["mc_responses"] = multiple_choice(model, tok, rows("multiple_choice.jsonl"))
        out[name] = r
        print(name, {k: v for k, v in r.items() if isinstance(v, float)})
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
