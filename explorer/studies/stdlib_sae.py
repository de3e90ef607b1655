"""A TopK sparse autoencoder on the standard-library LM's residual stream, and token kinds.

The recipe of ``tutorials/features.ipynb``: ``train_stdlib_sae`` trains a TopK SAE
(``SAE_SETTING``: 256 features, k = 16, on ``blocks.1.hook_resid_pre``) through
``explorer.training.train_sae`` (SAELens's trainer) on training-split windows of the
shipped ``stdlib_lm``; ``ship_sae`` writes it in SAELens's folder format with float16
weights under ``explorer/studies/trained/stdlib-sae``, which ``load_stdlib_sae`` opens
(as float32) in a second. Rebuild it with ``python -m explorer.studies.stdlib_sae``.

``token_kind`` sorts a token's text into the kinds the tutorial looks for (indentation,
quote, keyword, identifier, other) and ``kind_purity`` measures, for every unit, which
fraction of its top-activating tokens are of each kind: pure functions of text and tensors.

>>> [token_kind(t) for t in ("\\n    ", "'", " def", " self", "(")]
['indentation', 'quote', 'keyword', 'identifier', 'other']
>>> acts = torch.tensor([[[0.0, 1.0], [2.0, 0.0], [0.0, 3.0]]])   # [batch, pos, unit]
>>> p = kind_purity(torch.tensor([[0, 1, 2]]), acts, ["\\n  ", " if", "x"], n=1)
>>> p.best("keyword"), p.purity[1].tolist(), p.coverage[1].tolist()
(0, [0.0, 0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0, 0.0])
"""

from __future__ import annotations

import argparse
import json
import keyword
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float, Int
from safetensors.torch import load_file, save_file

from explorer._display import Shown, long_frame
from explorer.features import SparseAutoencoder, load_sae
from explorer.hypotheses.explanations import form_explanation, simulation_score
from explorer.models.handle import ModelHandle
from explorer.studies.stdlib_lm import DEFAULT_SETTING, StdlibLM, load_stdlib_lm
from explorer.training import train_sae

__all__ = [
    "KINDS",
    "SAE_SETTING",
    "SHIPPED_SAE",
    "KindPurity",
    "kind_purity",
    "load_stdlib_sae",
    "ship_sae",
    "simulation_scores",
    "token_kind",
    "train_stdlib_sae",
]

#: The SAE that ships with explorer (SAELens's folder format, float16 weights).
SHIPPED_SAE = Path(__file__).resolve().parent / "trained" / "stdlib-sae"

#: The recipe: ``train_sae``'s arguments and the training windows (training split, seed 0).
SAE_SETTING: dict[str, Any] = {
    "hook": "blocks.1.hook_resid_pre",
    "d_sae": 256,
    "k": 16,
    "n_windows": 256,
    "n_samples": 150_000,
    "samples_per_step": 256,
    "batch_size": 32,
    "lr": 1e-3,
    "seed": 0,
}

KINDS = ("indentation", "quote", "keyword", "identifier", "other")
_QUOTES = ("'", '"')


def token_kind(text: str) -> str:
    """The kind of one token's text: ``"indentation"`` (only spaces, tabs and line breaks,
    with at least two spaces or a line break), ``"quote"`` (holds a quote character),
    ``"keyword"`` (a Python keyword, leading space allowed), ``"identifier"`` (any other
    name) or ``"other"``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str (a token's text), got {type(text).__name__}")
    if text and not text.strip(" \t\n") and ("\n" in text or "  " in text):
        return "indentation"
    if any(q in text for q in _QUOTES):
        return "quote"
    word = text.strip(" ")
    if keyword.iskeyword(word):
        return "keyword"
    if word.isidentifier():
        return "identifier"
    return "other"


@dataclass(frozen=True, repr=False)
class KindPurity(Shown):
    """For each unit, the fraction of its ``n`` top-activating tokens of each kind.

    ``purity[u, j]`` is for unit ``u`` and kind ``KINDS[j]``; ``coverage[u, j]`` the
    fraction of all tokens of kind ``j`` on which unit ``u`` fires (is above 0);
    ``top_tokens[u]`` holds the token ids at its top activations, strongest first (only
    positions where it fired).
    """

    purity: Float[torch.Tensor, "unit kind"]
    coverage: Float[torch.Tensor, "unit kind"]
    top_tokens: tuple[tuple[int, ...], ...]
    n: int

    def match(self, kind: str) -> Float[torch.Tensor, " unit"]:
        """How well each unit matches ``kind``: purity times coverage (a pure unit that
        fires on one rare token of the kind scores low)."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}: choose one of {KINDS}")
        j = KINDS.index(kind)
        return self.purity[:, j] * self.coverage[:, j]

    def to_dataframe(self) -> Any:
        """One row per unit and kind: ``unit``, ``kind``, ``purity``, ``coverage``."""
        frame = long_frame(self.purity.double(), ("unit", "kind"), name="purity")
        frame["kind"] = [KINDS[int(j)] for j in frame["kind"]]
        frame["coverage"] = self.coverage.double().flatten().numpy()
        return frame

    def _summary(self) -> str:
        return f"{self.purity.shape[0]} units x {len(KINDS)} kinds of token, top {self.n}"

    def _top(self) -> list[str]:
        return [f"{kind}: unit {self.best(kind)}" for kind in KINDS if kind != "other"]

    def _table(self) -> tuple:
        rows = [
            (kind, self.best(kind), float(self.match(kind).max()))
            for kind in KINDS
            if kind != "other"
        ]
        note = "match = purity x coverage"
        return "units by kind of token", ("kind", "best unit", "match"), rows, note

    def best(self, kind: str) -> int:
        """The unit that matches ``kind`` best (``match``; ties: the first)."""
        return int(self.match(kind).argmax())

    def ranking(self, kind: str) -> list[int]:
        """Units by how well they match ``kind``, best first."""
        return self.match(kind).argsort(descending=True, stable=True).tolist()


def kind_purity(
    tokens: Int[torch.Tensor, "batch pos"],
    acts: Float[torch.Tensor, "batch pos unit"],
    vocab: Sequence[str],
    *,
    n: int = 50,
) -> KindPurity:
    """Which kind of token each unit's ``n`` strongest activations sit on.

    A unit that fires on fewer than ``n`` tokens is measured on those it fires on; a unit
    that never fires gets purity 0 for every kind.
    """
    if tokens.shape != acts.shape[:2]:
        raise ValueError(
            f"acts must be [batch, pos, unit] over tokens {tuple(tokens.shape)}, "
            f"got {tuple(acts.shape)}"
        )
    if n < 1:
        raise ValueError(f"n must be a positive count of top tokens, got {n}")
    kinds = torch.tensor([KINDS.index(token_kind(t)) for t in vocab])
    flat_tokens = tokens.reshape(-1)
    flat = acts.reshape(-1, acts.shape[-1]).float()
    values, where = flat.topk(min(n, flat.shape[0]), dim=0)
    token_kinds = kinds[flat_tokens]
    one_hot = torch.nn.functional.one_hot(token_kinds, len(KINDS)).float()  # [tokens, kind]
    per_kind = one_hot.sum(0).clamp(min=1)
    coverage = ((flat > 0).float().T @ one_hot) / per_kind
    purity = torch.zeros(acts.shape[-1], len(KINDS))
    top = []
    for unit in range(acts.shape[-1]):
        ids = flat_tokens[where[:, unit][values[:, unit] > 0]]
        top.append(tuple(ids.tolist()))
        if len(ids):
            purity[unit] = torch.bincount(kinds[ids], minlength=len(KINDS)).float() / len(ids)
    return KindPurity(purity, coverage, tuple(top), n)


def simulation_scores(
    formation: Int[torch.Tensor, "batch pos"],
    formation_acts: Float[torch.Tensor, "batch pos unit"],
    held_out: Int[torch.Tensor, "batch2 pos2"],
    held_out_acts: Float[torch.Tensor, "batch2 pos2 unit"],
    *,
    vocab: Sequence[str] | None = None,
    n: int = 10,
) -> Float[torch.Tensor, " unit"]:
    """Every unit's held-out simulation score: its top-``n``-token explanation
    (``form_explanation``) formed on ``formation`` alone, then the correlation of what it
    predicts on ``held_out`` with the unit's real activations there (``simulation_score``).
    """
    for name, t, a in (
        ("formation", formation, formation_acts),
        ("held_out", held_out, held_out_acts),
    ):
        if t.shape != a.shape[:2]:
            raise ValueError(
                f"{name}_acts must be [batch, pos, unit] over {name} tokens {tuple(t.shape)}, "
                f"got {tuple(a.shape)}"
            )
    if formation_acts.shape[-1] != held_out_acts.shape[-1]:
        raise ValueError(
            f"formation has {formation_acts.shape[-1]} units but held_out "
            f"{held_out_acts.shape[-1]}: give the same units on both"
        )
    scores = torch.zeros(formation_acts.shape[-1])
    for unit in range(len(scores)):
        e = form_explanation(formation, formation_acts[..., unit], n=n, vocab=vocab)
        scores[unit] = simulation_score(e.simulate(held_out, vocab=vocab), held_out_acts[..., unit])
    return scores


def train_stdlib_sae(
    lm: StdlibLM, *, run: str | Path | None = None, progress: bool = True
) -> SparseAutoencoder:
    """Train the recipe's TopK SAE on ``lm``'s training-split windows (``SAE_SETTING``)."""
    s = SAE_SETTING
    windows = lm.data().windows("train", s["n_windows"], DEFAULT_SETTING.n_ctx, seed=s["seed"])
    return train_sae(
        lm.model, windows.tokens, s["hook"], d_sae=s["d_sae"], k=s["k"],
        n_samples=s["n_samples"], samples_per_step=s["samples_per_step"],
        batch_size=s["batch_size"], lr=s["lr"], seed=s["seed"], run=run, progress=progress,
    )  # fmt: skip


def ship_sae(sae: SparseAutoencoder, dest: str | Path = SHIPPED_SAE) -> Path:
    """Write ``sae`` in SAELens's folder format with float16 weights (half the bytes)."""
    dest = Path(dest)
    sae.save(dest)
    weights = dest / "sae_weights.safetensors"
    save_file({k: v.half().contiguous() for k, v in load_file(weights).items()}, weights)
    (dest / "recipe.json").write_text(json.dumps(SAE_SETTING, indent=1) + "\n")
    return dest


def load_stdlib_sae(model: ModelHandle, path: str | Path = SHIPPED_SAE) -> SparseAutoencoder:
    """Open the shipped SAE (or one ``ship_sae`` wrote) on ``model``, in float32."""
    return load_sae(path, model=model, dtype="float32")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Rebuild the shipped standard-library SAE.")
    parser.add_argument("--out", default=str(SHIPPED_SAE), help="folder to write it to")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    sae = train_stdlib_sae(load_stdlib_lm())
    print(ship_sae(sae, args.out))


if __name__ == "__main__":
    main()
