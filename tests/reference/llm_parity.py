#!/usr/bin/env python3
"""Builds tiny random causal LMs of each family arena supports with transformers, saves them in
Hugging Face layout, and writes what transformers computes on fixed inputs (f32, CPU):
per-sequence mean losses (unpadded and in a right-padded batch with an attention mask), a slice
of logits, and greedy generations with a repetition penalty.

The Rust side (`libs/llm/tests/parity.rs`) loads the same files with arena-llm and compares
(relative error <= 1e-4 on losses). The outputs are committed under tests/fixtures/llm/, so CI
needs no torch. Regenerate with:

    python3 -m venv /opt/refenv && /opt/refenv/bin/pip install torch transformers numpy
    /opt/refenv/bin/python tests/reference/llm_parity.py

(transformers 5.23.0, torch 2.15.0 produced the committed files.)
"""

import json
import os
import shutil
import sys

import torch
import transformers
from transformers import (
    Gemma2Config,
    Gemma2ForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Phi3Config,
    Phi3ForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "llm")
VOCAB = 96
COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    initializer_range=0.2,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)

FAMILIES = {
    # Llama with Llama 3.1's rope scaling and untied embeddings.
    "llama": (
        LlamaConfig,
        LlamaForCausalLM,
        dict(
            rope_parameters=dict(
                rope_type="llama3",
                rope_theta=500000.0,
                factor=8.0,
                low_freq_factor=1.0,
                high_freq_factor=4.0,
                original_max_position_embeddings=16,
            ),
            tie_word_embeddings=False,
        ),
    ),
    # Mistral with a sliding window shorter than the sequences.
    "mistral": (MistralConfig, MistralForCausalLM, dict(sliding_window=5, rope_theta=10000.0)),
    # Qwen2: q/k/v biases, tied embeddings.
    "qwen2": (Qwen2Config, Qwen2ForCausalLM, dict(tie_word_embeddings=True, rope_theta=1000000.0)),
    # Qwen3: q/k norms and a head_dim that is not hidden/heads.
    "qwen3": (Qwen3Config, Qwen3ForCausalLM, dict(head_dim=16, tie_word_embeddings=False)),
    # Phi-3: fused projections, partial rotary, sliding window.
    "phi3": (
        Phi3Config,
        Phi3ForCausalLM,
        dict(partial_rotary_factor=0.5, sliding_window=6, pad_token_id=0),
    ),
    # Gemma 2: soft-capping, extra norms, query scalar, alternating sliding windows.
    "gemma2": (
        Gemma2Config,
        Gemma2ForCausalLM,
        dict(
            head_dim=8,
            query_pre_attn_scalar=12,
            attn_logit_softcapping=2.0,
            final_logit_softcapping=3.0,
            sliding_window=4,
            hidden_activation="gelu_pytorch_tanh",
        ),
    ),
}

# Fixed inputs: three sequences of different lengths.
SEQS = [
    [1, 17, 42, 5, 88, 23, 23, 9, 61, 70, 3, 44],
    [1, 90, 12, 12, 12, 7, 33],
    [1, 4, 8, 15, 16, 23, 42, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60],
]
PROMPTS = [[1, 17, 42, 5], [1, 90, 12]]


def seq_loss(logits, ids):
    """Mean cross-entropy of next-token prediction, as transformers' loss."""
    lp = torch.log_softmax(logits[:-1].double(), dim=-1)
    tgt = torch.tensor(ids[1:])
    nll = -lp[torch.arange(len(ids) - 1), tgt]
    return float(nll.mean())


def main():
    torch.manual_seed(0)
    shutil.rmtree(ROOT, ignore_errors=True)
    os.makedirs(ROOT)
    for name, (cfg_cls, model_cls, extra) in FAMILIES.items():
        torch.manual_seed(1234)
        cfg = cfg_cls(**{**COMMON, **extra})
        cfg._attn_implementation = "eager"
        model = model_cls(cfg).eval().to(torch.float32)
        # Norm weights start at 1 (Gemma: 0); perturb them so the norms are exercised.
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if "norm" in pname:
                    p.add_(torch.randn_like(p) * 0.1)
        out_dir = os.path.join(ROOT, name)
        model.save_pretrained(out_dir, safe_serialization=True)
        expected = {"family": name, "sequences": SEQS, "losses": [], "logits_head": [], "generations": []}
        with torch.no_grad():
            for ids in SEQS:
                logits = model(torch.tensor([ids])).logits[0]
                expected["losses"].append(seq_loss(logits, ids))
                expected["logits_head"].append(logits[: min(4, len(ids)), :8].tolist())
            # One right-padded batch with an attention mask.
            t = max(len(s) for s in SEQS)
            ids = torch.tensor([s + [0] * (t - len(s)) for s in SEQS])
            mask = torch.tensor([[1] * len(s) + [0] * (t - len(s)) for s in SEQS])
            logits = model(ids, attention_mask=mask).logits
            expected["padded_losses"] = [seq_loss(logits[i, : len(s)], s) for i, s in enumerate(SEQS)]
            for p in PROMPTS:
                g = model.generate(
                    torch.tensor([p]),
                    attention_mask=torch.ones(1, len(p), dtype=torch.long),
                    max_new_tokens=10,
                    do_sample=False,
                    repetition_penalty=1.3,
                    eos_token_id=None,
                    pad_token_id=0,
                )
                expected["generations"].append({"prompt": p, "new_tokens": g[0, len(p):].tolist()})
        with open(os.path.join(out_dir, "expected.json"), "w") as f:
            json.dump(expected, f, indent=1)
            f.write("\n")
        # The generation config is not needed by arena; keep the fixture small and stable.
        gc = os.path.join(out_dir, "generation_config.json")
        if os.path.exists(gc):
            os.remove(gc)
        print(name, "params", sum(p.numel() for p in model.parameters()), "losses", expected["losses"])
    print("transformers", transformers.__version__, "torch", torch.__version__, file=sys.stderr)


if __name__ == "__main__":
    main()
