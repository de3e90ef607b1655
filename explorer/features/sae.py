"""``SparseAutoencoder``: one SAELens SAE (or transcoder) and the hook it reads.

explorer does not implement sparse autoencoders: SAELens does (``sae_lens.SAE`` and its
architectures: standard L1, TopK, BatchTopK, JumpReLU, transcoders). This module keeps one
SAELens module beside what explorer needs to use it on a handle: the hook it reads
(``hook``), the hook it writes (``hook_out``: the same hook for an SAE, the MLP output for a
transcoder), the widths (``d_in``, ``d_out``, ``d_sae``) and the architecture's name. The
SAELens module stays reachable as ``.sae`` for anything SAELens offers.

Feature activations are ``encode(x)``: ``[..., d_in] -> [..., d_sae]``; ``decode`` maps them
back to ``[..., d_out]``. ``decoder`` is ``[d_sae, d_out]`` (a feature's direction in the
activation space it writes), ``encoder`` is ``[d_in, d_sae]``.

>>> import torch
>>> sae = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=8, d_sae=32, k=4, seed=0)
>>> sae
SparseAutoencoder(topk at blocks.0.hook_resid_post, 8 -> 32 features)
>>> acts = sae.encode(torch.randn(2, 3, 8))
>>> acts.shape, int((acts[0, 0] != 0).sum())
(torch.Size([2, 3, 32]), 4)
>>> sae.decode(acts).shape, sae.decoder.shape
(torch.Size([2, 3, 8]), torch.Size([32, 8]))
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from explorer._checks import check_index

__all__ = ["ARCHITECTURES", "SparseAutoencoder"]

# SAELens's architecture names explorer loads and splices (inference classes)
ARCHITECTURES = (
    "standard",
    "topk",
    "batchtopk",
    "jumprelu",
    "gated",
    "abstopk",
    "transcoder",
    "skip_transcoder",
    "jumprelu_transcoder",
    "jumprelu_skip_transcoder",
)


class SparseAutoencoder:
    """One SAELens SAE or transcoder, with the hook names it reads and writes.

    Build one with ``from_saelens(sae, hook=...)`` (an SAELens module in memory),
    ``features.load_sae(folder, model=...)`` (SAELens's folder format) or ``create(...)`` (a
    fresh, untrained one, for tests and for training)."""

    def __init__(self, sae: Any, *, hook: str, hook_out: str | None = None, name: str = "") -> None:
        if not isinstance(hook, str) or not hook:
            raise ValueError(
                f"hook must be a hook name such as 'blocks.0.hook_resid_post', not {hook!r}"
            )
        self.sae = sae
        self.hook = hook
        self.hook_out = hook_out or hook
        self.name = name or f"{self.architecture}@{hook}"
        self.folder: Path | None = None  # where load_sae read it (a stored hypothesis names it)
        sae.eval()

    # ------------------------------------------------------------------ building
    @classmethod
    def from_saelens(
        cls, sae: Any, *, hook: str | None = None, hook_out: str | None = None, name: str = ""
    ) -> SparseAutoencoder:
        """Wrap an SAELens module; ``hook`` defaults to the one its config names
        (``cfg.metadata.hook_name``), ``hook_out`` to ``cfg.metadata.hook_name_out``."""
        meta = sae.cfg.metadata
        hook = hook or meta.hook_name
        if not hook:
            raise ValueError(
                "this SAE's config names no hook (cfg.metadata.hook_name is empty): pass "
                "hook='blocks.L.hook_...' saying which activation it reads"
            )
        hook_out = hook_out or meta.hook_name_out or None
        if hook_out is None and _is_transcoder(sae):
            raise ValueError(
                f"this transcoder reads {hook!r} but its config names no output hook "
                "(cfg.metadata.hook_name_out): pass hook_out='blocks.L.hook_mlp_out'"
            )
        meta.hook_name = hook
        if hook_out != hook and hook_out is not None:
            meta.hook_name_out = hook_out
        return cls(sae, hook=hook, hook_out=hook_out, name=name)

    @classmethod
    def create(
        cls,
        hook: str,
        *,
        d_in: int,
        d_sae: int,
        architecture: str = "topk",
        k: int = 8,
        hook_out: str | None = None,
        d_out: int | None = None,
        seed: int = 0,
    ) -> SparseAutoencoder:
        """A fresh SAELens SAE (random weights from ``seed``): ``architecture`` one of
        "standard", "topk", "jumprelu" or "transcoder" (``d_out`` and ``hook_out`` then)."""
        # lazy: sae_lens (seconds to import) builds the SAELens module only when one is created
        import sae_lens

        configs = {
            "standard": (sae_lens.StandardSAE, sae_lens.StandardSAEConfig, {}),
            "topk": (sae_lens.TopKSAE, sae_lens.TopKSAEConfig, {"k": k}),
            "jumprelu": (sae_lens.JumpReLUSAE, sae_lens.JumpReLUSAEConfig, {}),
            "transcoder": (
                sae_lens.Transcoder,
                sae_lens.TranscoderConfig,
                {"d_out": d_out or d_in, "apply_b_dec_to_input": False},
            ),
        }
        if architecture not in configs:
            raise ValueError(
                f"architecture {architecture!r} cannot be created here: use one of "
                f"{sorted(configs)} (train others through features.train_sae)"
            )
        module, config, extra = configs[architecture]
        if architecture == "transcoder" and not hook_out:
            raise ValueError(
                "a transcoder writes another hook: pass hook_out='blocks.L.hook_mlp_out'"
            )
        cfg = config(d_in=int(d_in), d_sae=int(d_sae), **extra)
        cfg.metadata.hook_name = hook
        if hook_out:
            cfg.metadata.hook_name_out = hook_out
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            sae = module(cfg)
            if architecture == "jumprelu":  # SAELens starts thresholds at 0: make them small
                with torch.no_grad():
                    for name, p in sae.named_parameters():
                        if name == "threshold":
                            p.fill_(1e-3)
        return cls(sae, hook=hook, hook_out=hook_out)

    # ----------------------------------------------------------------- structure
    @property
    def architecture(self) -> str:
        return str(self.sae.cfg.architecture())

    @property
    def d_in(self) -> int:
        return int(self.sae.cfg.d_in)

    @property
    def d_sae(self) -> int:
        return int(self.sae.cfg.d_sae)

    @property
    def d_out(self) -> int:
        return int(getattr(self.sae.cfg, "d_out", self.sae.cfg.d_in))

    @property
    def is_transcoder(self) -> bool:
        return self.hook_out != self.hook or _is_transcoder(self.sae)

    @property
    def reshapes_heads(self) -> bool:
        """Whether it reads a per-head hook (``attn.hook_z``) flattened to heads x d_head."""
        return self.sae.cfg.reshape_activations == "hook_z"

    @property
    def hooks(self) -> list[str]:
        """The hooks it touches: ``[hook]``, or ``[hook, hook_out]`` for a transcoder."""
        return [self.hook] if self.hook_out == self.hook else [self.hook, self.hook_out]

    @property
    def decoder(self) -> torch.Tensor:
        """``[d_sae, d_out]``: each feature's direction in the space it writes (detached)."""
        return self.sae.W_dec.detach()

    @property
    def encoder(self) -> torch.Tensor:
        """``[d_in, d_sae]``: each feature's encoder direction (detached)."""
        return self.sae.W_enc.detach()

    @property
    def device(self) -> torch.device:
        return self.sae.W_enc.device

    def to(self, device: str | torch.device) -> SparseAutoencoder:
        """Move the SAE to ``device`` (where the model's activations are); returns itself."""
        self.sae.to(device)
        return self

    def check_feature(self, feature: int) -> int:
        """``feature`` as an int, or a ValueError naming the valid range."""
        return check_index("feature", feature, self.d_sae, f"(of {self.name})")

    # ----------------------------------------------------------------- computing
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Feature activations ``[..., d_sae]`` of activations ``[..., d_in]``."""
        return self.sae.encode(x)

    def decode(self, acts: torch.Tensor) -> torch.Tensor:
        """The reconstruction ``[..., d_out]`` of feature activations ``[..., d_sae]``."""
        return self.sae.decode(acts)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``decode(encode(x))``."""
        return self.decode(self.encode(x))

    def save(self, folder: str | Path) -> Path:
        """Write SAELens's folder format (``cfg.json`` + ``sae_weights.safetensors``)."""
        folder = Path(folder)
        self.sae.save_model(folder)
        return folder

    def fingerprint(self) -> str:
        """A short hash of the weights and hooks: equal for the same SAE, for caches."""
        h = hashlib.sha256("|".join(self.hooks).encode())
        for name, p in sorted(self.sae.state_dict().items()):
            h.update(name.encode())
            h.update(p.detach().float().cpu().numpy().tobytes())
        return h.hexdigest()[:16]

    def __repr__(self) -> str:
        where = self.hook if self.hook_out == self.hook else f"{self.hook} -> {self.hook_out}"
        return f"SparseAutoencoder({self.architecture} at {where}, {self.d_in} -> {self.d_sae} features)"


def _is_transcoder(sae: Any) -> bool:
    return "transcoder" in str(sae.cfg.architecture())
