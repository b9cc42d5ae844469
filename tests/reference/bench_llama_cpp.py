#!/usr/bin/env python3
"""The llama.cpp side of `arena-lm-bench --peer llama.cpp`.

Writes the model directory's safetensors as an f32 GGUF (`gguf` package, llama.cpp's own
writer; HF tensor names mapped as llama.cpp's convert_hf_to_gguf.py maps Qwen2), then, through
llama-cpp-python, evaluates the same token ids ((i * 7919 + 13) mod vocab) with logits for every
position (`logits_all`), so the work is arena's: every position's LM head and log-softmax. The
token ids are fed directly, so the GGUF's vocabulary is a placeholder (SentencePiece type, byte
tokens then `t<i>`): no tokenizer conversion. One warm-up evaluation, then --iters timed ones.
Prints JSON: tokens/s and the mean next-token cross-entropy (log-softmax in float64 over
llama.cpp's f32 logits), which `arena-lm-bench` prints beside arena's as the check that both
computed the same thing. The timed evaluations include llama-cpp-python's copy of every logit
into its numpy buffer (what `logits_all` costs through the binding).

The trunk figure is llama-bench's pp<seq> workload: the same evaluation with only the last
position's logits (llama.cpp's default without `logits_all`), printed beside arena's layers-only
time. The KV cache is f32 on both contexts (llama.cpp's default is f16), for parity.

Runs in the reference venv that scripts/peers/install-llama-cpp.sh makes; never in CI.
"""

import argparse
import json
import os
import time
from importlib.metadata import version

import gguf
import numpy as np
from safetensors.numpy import load_file


def write_gguf(model_dir: str, out: str, seq: int) -> dict:
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    if cfg["model_type"] != "qwen2":
        raise SystemExit(f"only the bench's Qwen2 layout is mapped, not {cfg['model_type']}")
    tensors = load_file(os.path.join(model_dir, "model.safetensors"))
    w = gguf.GGUFWriter(out, "qwen2")
    w.add_name("arena-bench")
    w.add_context_length(max(seq, cfg.get("max_position_embeddings", seq)))
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_freq_base(float(cfg.get("rope_theta", 10000.0)))
    w.add_layer_norm_rms_eps(float(cfg["rms_norm_eps"]))
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    vocab = cfg["vocab_size"]
    tokens = [f"<0x{b:02X}>" for b in range(256)] + [f"t{i}" for i in range(256, vocab)]
    types = [gguf.TokenType.BYTE] * 256 + [gguf.TokenType.NORMAL] * (vocab - 256)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens[:vocab])
    w.add_token_scores([0.0] * vocab)
    w.add_token_types(types[:vocab])
    # The bench models' special ids may lie outside the placeholder vocabulary; nothing is tokenized.
    special = lambda key, default: cfg.get(key) if (cfg.get(key) or vocab) < vocab else default
    w.add_bos_token_id(special("bos_token_id", 1))
    w.add_eos_token_id(special("eos_token_id", 2))
    w.add_add_bos_token(False)

    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    per_layer = {
        "input_layernorm.weight": "attn_norm.weight",
        "post_attention_layernorm.weight": "ffn_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight",
        "self_attn.q_proj.bias": "attn_q.bias",
        "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.k_proj.bias": "attn_k.bias",
        "self_attn.v_proj.weight": "attn_v.weight",
        "self_attn.v_proj.bias": "attn_v.bias",
        "self_attn.o_proj.weight": "attn_output.weight",
        "mlp.gate_proj.weight": "ffn_gate.weight",
        "mlp.up_proj.weight": "ffn_up.weight",
        "mlp.down_proj.weight": "ffn_down.weight",
    }
    for i in range(cfg["num_hidden_layers"]):
        for hf, gg in per_layer.items():
            names[f"model.layers.{i}.{hf}"] = f"blk.{i}.{gg}"
    for hf, array in tensors.items():
        if hf not in names:
            raise SystemExit(f"no GGUF name for tensor {hf}")
        w.add_tensor(names[hf], np.ascontiguousarray(array, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return cfg


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--seq", type=int, default=512)
p.add_argument("--iters", type=int, default=5)
p.add_argument("--threads", type=int, default=os.cpu_count())
a = p.parse_args()

import llama_cpp  # noqa: E402  (after argparse: --help works without it)

path = os.path.join(a.model, "model-f32.gguf")
cfg = write_gguf(a.model, path, a.seq)
vocab = cfg["vocab_size"]
ids = [(i * 7919 + 13) % vocab for i in range(a.seq)]
F32 = 0  # GGML_TYPE_F32


def context(logits_all: bool) -> "llama_cpp.Llama":
    return llama_cpp.Llama(
        model_path=path,
        n_ctx=a.seq,
        n_batch=a.seq,
        n_ubatch=a.seq,
        n_threads=a.threads,
        n_threads_batch=a.threads,
        type_k=F32,
        type_v=F32,
        flash_attn=False,
        logits_all=logits_all,
        verbose=False,
    )


def timed(llm: "llama_cpp.Llama") -> float:
    """Seconds per evaluation of `ids`, after one warm-up."""
    llm.reset()
    llm.eval(ids)
    t0 = time.perf_counter()
    for _ in range(a.iters):
        llm.reset()
        llm.eval(ids)
    return (time.perf_counter() - t0) / a.iters


full = context(True)
secs = timed(full)
logits = np.array(full.scores[: a.seq], dtype=np.float32)
lp = log_softmax(logits[:-1])
nll = -lp[np.arange(a.seq - 1), ids[1:]]
del full
trunk_secs = timed(context(False))
print(json.dumps({
    "tokens_per_s": a.seq / secs,
    "trunk_tokens_per_s": a.seq / trunk_secs,
    "loss": float(nll.mean()),
    "nll": [float(v) for v in nll],
    "threads": a.threads,
    "versions": f"llama-cpp-python {llama_cpp.__version__}, gguf {version('gguf')}, f32 weights and KV cache",
}))
