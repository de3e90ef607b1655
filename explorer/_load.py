"""``explorer.load``: the facade that opens every model source, training runs included.

A training run (a folder with ``manifest.json``) is the ``training`` layer's format; every
other source (configs, modules, checkpoints, ``"shipped:<name>"``, Hugging Face models and
folders) is ``explorer.models.load``'s. Only this top layer knows both, so ``models`` never
imports ``training`` (see docs/architecture.md).

>>> import explorer, tempfile
>>> from explorer.models import zoo
>>> from explorer.training import Run
>>> model = zoo.attention_only_transformer(n_layers=1, d_model=16, d_vocab=10, n_ctx=8)
>>> run = Run.create(tempfile.mkdtemp() + "/run", model)
>>> run.save_checkpoint(model, 5)
>>> explorer.load(run.path, step=5).fingerprint() == model.fingerprint()
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from explorer.models import loading
from explorer.models.handle import ModelHandle
from explorer.training.run import CHECKPOINTS, MANIFEST, Run

__all__ = ["load"]


def load(
    source: Any,
    *,
    input_shape: Sequence[int] | None = None,
    image_shape: Sequence[int] | None = None,
    module: nn.Module | None = None,
    key_map: Mapping[str, str] | None = None,
    local_path: str | os.PathLike[str] | None = None,
    step: int | None = None,
    name: str | None = None,
    tokenizer: Any | None = None,
    backend: str = "transformer-lens",
    **backend_options: Any,
) -> ModelHandle:
    """Open a model from any source explorer knows.

    Args:
        source: a ``ModelHandle`` (returned as is); a ``TransformerConfig``/``MLPConfig``/
            ``CNNConfig`` (a fresh seeded model); a transformer-lens ``HookedTransformer``;
            a ``transformers`` model object or a folder written by its ``save_pretrained``
            (GPT-2, GPT-NeoX, Llama, Qwen2, Gemma, Mistral, BERT: converted to
            transformer-lens offline, logit parity in the repr; see ``explorer.models.hf``);
            a plain ``nn.Module`` (hook points added on its layers); a folder saved by
            explorer (a checkpoint, or a training run: its last checkpoint, or ``step``);
            ``"shipped:<name>"`` for a trained checkpoint shipped with explorer (offline);
            or a Hugging Face model name (needs internet; offline it fails at once and
            says how to pass a folder).
        input_shape: for plain modules: the shape of one input as ``forward`` takes it
            (``(1, 28, 28)``; ``(784,)`` for an MLP on flat pixels). Checked by one forward
            pass on zeros, which fails naming the shape the first layer expects; inferred
            when the first layer is a Linear on the input.
        image_shape: ``(C, H, W)`` the image tools show and optimise (attribution maps,
            ``maximize_activation``, weight images, top examples, ``audit``), when the
            model takes its input flat; inferred for ``H*W`` or ``3*H*W`` values, ``H == W``.
        module: for a bare safetensors file (or a folder holding ``model.safetensors``) of
            a custom module's weights: an instance to load them into (strictly: every key).
        key_map: with ``module``: rename key prefixes of the file before loading, e.g.
            ``{"0.": "1.", "2.": "3."}`` for weights saved from ``Sequential(Linear, ReLU,
            ...)`` going into ``Sequential(Flatten(), Linear, ReLU, ...)``. Plain data: the
            longest matching prefix is replaced, once.
        name: the handle's name (also for a path: a checkpoint, run or folder).
        local_path: for a Hugging Face name: a folder with its files (same as passing it).
        step: for a training run: which checkpoint.
        tokenizer: for a ``transformers`` model object: its tokenizer (default: the one
            saved beside it, when the model was read from a local folder).
        backend: for a Hugging Face model or folder: ``"transformer-lens"`` (converted, the
            default) or ``"nnsight"`` (kept as it is, run as nnsight traces: for models too
            large to copy; see docs/scale.md). nnsight options: ``remote=True`` (run on an
            NDIF server, nnsight's own remote execution), ``device=``, ``device_map=``
            (accelerate's ``"auto"`` for several GPUs on one host), ``trace_kwargs=``.
            On both backends: ``dtype=`` (a folder loads in its saved dtype otherwise; a
            model object is cast) and ``allow_mismatch=True`` (take a converted handle
            whose logit parity fails, which is otherwise refused with its figure).

    >>> from explorer.models.config import MLPConfig
    >>> load(MLPConfig(hidden=(16,))).hook_names
    ['hook_input', 'hook_logits', 'blocks.0.mlp.hook_pre', 'blocks.0.mlp.hook_post']
    """
    if isinstance(source, (str, os.PathLike)) and (Path(source) / MANIFEST).is_file():
        handle = Run.open(source).load_model(step)
        if name is not None:
            handle.name = name
        return handle
    if (
        isinstance(source, (str, os.PathLike))
        and (Path(source) / CHECKPOINTS).is_dir()
        and not (Path(source) / "config.json").is_file()
    ):
        raise FileNotFoundError(
            f"{str(source)!r} holds the checkpoint folders of a training run but no {MANIFEST} "
            f"(deleted?): Run.repair({str(source)!r}, rebuild=True) rebuilds it from them, "
            "then explorer.load(path, step=...) opens the run"
        )
    return loading.load(
        source,
        input_shape=input_shape,
        image_shape=image_shape,
        module=module,
        key_map=key_map,
        local_path=local_path,
        step=step,
        name=name,
        tokenizer=tokenizer,
        backend=backend,
        **backend_options,
    )
