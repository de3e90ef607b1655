"""Measure one transformer layer's cost on the nnsight backend, for docs/scale.md's estimate.

A random-weight Llama-shaped model (d_model 512, 8 heads of 64, d_mlp 1376: Llama-7B's
ratios at an eighth of the width), 2 layers, one prompt of 1,024 tokens, CPU, one thread.
Prints the plain Hugging Face forward time, the same pass as an nnsight trace that caches
every hook, and the bytes of each hook's activation in one layer (measured shapes), which
docs/scale.md scales to Llama-7B's width. Run: ``python scripts/nnsight_layer_cost.py``.
"""

from __future__ import annotations

import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
torch.set_num_threads(1)


def main(pos: int = 1024) -> None:
    import hf_tiny
    import transformers as T

    import explorer

    cfg = T.LlamaConfig(
        num_hidden_layers=2,
        hidden_size=512,
        num_attention_heads=8,
        num_key_value_heads=8,
        intermediate_size=1376,
        max_position_embeddings=pos,
        vocab_size=512,
    )
    hf_model = hf_tiny.from_config(cfg)
    handle = explorer.load(hf_model, backend="nnsight")
    tokens = torch.randint(0, 512, (1, pos))
    with torch.no_grad():
        hf_model(tokens)  # warm-up
        t = time.perf_counter()
        hf_model(tokens)
        plain = time.perf_counter() - t
        t = time.perf_counter()
        _, cache = handle.cache_pass(tokens, names=[n for n in handle.hook_names])
        traced = time.perf_counter() - t
    print(f"plain HF forward, 2 layers, {pos} tokens: {plain:.3f} s")
    print(f"nnsight trace caching all {len(cache)} hooks: {traced:.3f} s")
    layer = {k: v for k, v in cache.items() if k.startswith("blocks.0.")}
    for name, act in layer.items():
        print(f"{name:28s} {list(act.shape)} {act.numel() * act.element_size() / 2**20:8.2f} MiB")
    total = sum(a.numel() * a.element_size() for a in layer.values())
    print(f"one layer, all hooks: {total / 2**20:.1f} MiB (fp32)")


if __name__ == "__main__":
    main()
