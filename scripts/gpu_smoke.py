"""GPU smoke run: the tutorials' analyses and a 1B-class model's sweep and top-k on CUDA.

Run by ``scripts/gpu_remote_check.sh`` on a machine with a GPU (or alone:
``python scripts/gpu_smoke.py OUT_DIR``). Each step runs on its own: one that fails is
recorded with its error and the rest go on, so a first run on a new machine reports
everything at once. Writes ``OUT_DIR/gpu_smoke.json`` and ``OUT_DIR/gpu_smoke.md`` (a table
for docs/benchmarks.md): per step the wall time, CUDA peak memory and the result's check.

Steps:
- induction heads tutorial: a 2-layer attention-only transformer (zoo), head scores, a
  zero-ablation head sweep and activation patching, on ``cuda``;
- grokking tutorial: the modular-addition transformer's Fourier spectrum, on ``cuda``;
- MNIST tutorial: the MLP's neuron sweep and streamed top-k, on ``cuda``;
- a 1B-class random-weight Llama (TinyLlama-1.1B's shape: 22 layers, d_model 2048, 32
  heads of 64, 4 key/value heads, d_mlp 5632, vocab 32,000), bf16, opened with
  ``backend="nnsight", device="cuda"``: a head sweep (704 heads) on one 1,024-token prompt
  and a streamed top-k of layer 11's neurons over 16 prompts of 1,024 tokens, with the
  CUDA peak memory of each.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# SMOKE_DEVICE=cpu SMOKE_SMALL=1 checks the wiring on a machine without a GPU
DEV = os.environ.get("SMOKE_DEVICE", "cuda")
SMALL = os.environ.get("SMOKE_SMALL") == "1"
CUDA = DEV == "cuda"
VOCAB = 512 if SMALL else 32000
POS = 32 if SMALL else 1024


def _step(results: list[dict], name: str, fn) -> None:
    if CUDA:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    try:
        check = fn()
        if CUDA:
            torch.cuda.synchronize()
        status = "ok"
    except Exception as exc:  # recorded, and the other steps still run
        check, status = traceback.format_exc(limit=6), f"error: {type(exc).__name__}: {exc}"
    results.append(
        {
            "step": name,
            "status": status,
            "seconds": round(time.perf_counter() - start, 3),
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3) if CUDA else None,
            "check": check,
        }
    )
    print(f"{name}: {status} ({results[-1]['seconds']} s, {results[-1]['peak_gib']} GiB)")


def _on_cuda(handle):
    handle.model.to(DEV)
    return handle


def induction() -> str:
    from explorer.analysis import ablation_sweep, activation_patching, head_scores, metrics
    from explorer.data import repeated_tokens
    from explorer.models import zoo

    m = _on_cuda(zoo.attention_only_transformer(n_layers=2, d_vocab=64, n_ctx=64))
    tokens = repeated_tokens(32, 20, 64).to(DEV)
    scores = head_scores(m, tokens).get("induction")
    metric = metrics.next_token_loss(tokens)
    sweep = ablation_sweep(m, tokens, metric=metric, granularity="head")
    patch = activation_patching(m, tokens, corrupted=tokens.roll(1, 0), metric=metric, grid="head")
    return f"induction scores {tuple(scores.shape)}, sweep {tuple(sweep.after.shape)}, patching {tuple(patch.values.shape)}"


def grokking() -> str:
    from explorer.analysis.fourier import fourier_spectrum
    from explorer.models import zoo

    m = _on_cuda(zoo.modular_addition_transformer())
    spectrum = fourier_spectrum(m.weight("W_E")[:-1])  # the embedding of the p residues
    return f"spectrum of W_E: {type(spectrum).__name__}"


def mnist() -> str:
    from explorer.analysis import ablation_sweep, metrics, top_k_examples
    from explorer.models import zoo

    m = _on_cuda(zoo.mnist_mlp(hidden=(128, 64)))
    x = torch.rand(512, 1, 28, 28, device=DEV)
    y = torch.randint(0, 10, (512,), device=DEV)
    sweep = ablation_sweep(m, x, metric=metrics.neg_cross_entropy(y), layer=0, granularity="neuron")
    top = top_k_examples(m, x, layer=0, n=10, batch_size=128)
    return f"sweep {tuple(sweep.after.shape)}, top-k {tuple(top.values.shape)}"


def one_b_model():
    import transformers as T

    import explorer

    shape = dict(
        num_hidden_layers=22,
        hidden_size=2048,
        num_attention_heads=32,
        num_key_value_heads=4,
        intermediate_size=5632,
    )
    if SMALL:
        shape = dict(
            num_hidden_layers=2,
            hidden_size=64,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=128,
        )
    cfg = T.LlamaConfig(**shape, vocab_size=VOCAB, max_position_embeddings=2048)
    torch.manual_seed(0)
    with torch.device(DEV):
        hf_model = T.LlamaForCausalLM(cfg).to(torch.bfloat16 if CUDA else torch.float32)
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"<s>": 0, "a": 1}, unk_token="<s>")),
        bos_token="<s>",
    )
    return explorer.load(hf_model, tokenizer=tok, backend="nnsight", device=DEV)


def one_b_sweep(handle) -> str:
    from explorer.analysis import ablation_sweep

    tokens = torch.randint(1, VOCAB, (1, POS), device=DEV)

    def metric(logits):
        return logits[:, -1].float().logsumexp(-1)

    sweep = ablation_sweep(
        handle, tokens, metric=metric, granularity="head", batch_size=64 * 1024 // POS
    )
    return f"{len(sweep.units)} heads, {len(handle.saved_log)} traces"


def one_b_topk(handle) -> str:
    from explorer.analysis import top_k_examples

    data = torch.randint(1, VOCAB, (16, POS), device=DEV)
    top = top_k_examples(handle, data, layer=handle.n_layers // 2, n=10, batch_size=4)
    return f"top-k {tuple(top.values.shape)}"


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if CUDA and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this script is for a GPU machine")
    results: list[dict] = []
    _step(results, "induction heads tutorial", induction)
    _step(results, "grokking tutorial", grokking)
    _step(results, "MNIST tutorial", mnist)
    holder: dict = {}
    _step(
        results,
        "1B Llama (random weights) load, nnsight backend",
        lambda: str(holder.setdefault("m", one_b_model()).name),
    )
    if "m" in holder:
        _step(results, "1B Llama head sweep, 1x1024 tokens", lambda: one_b_sweep(holder["m"]))
        _step(results, "1B Llama top-k, layer 11, 16x1024 tokens", lambda: one_b_topk(holder["m"]))
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "gpu": torch.cuda.get_device_name(0) if CUDA else f"{DEV} (wiring check)",
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    (out / "gpu_smoke.json").write_text(json.dumps({"meta": meta, "steps": results}, indent=1))
    rows = [
        f"GPU smoke run, {meta['date']}, {meta['gpu']}, torch {meta['torch']}",
        "",
        "| step | status | wall | CUDA peak |",
        "|---|---|---|---|",
    ]
    rows += [
        f"| {r['step']} | {r['status'][:80]} | {r['seconds']} s | {r['peak_gib']} GiB |"
        for r in results
    ]
    (out / "gpu_smoke.md").write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("OUT", "gpu-out")))
