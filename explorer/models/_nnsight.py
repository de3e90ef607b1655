"""The nnsight backend of the handle protocol: a Hugging Face model run as nnsight traces.

``explorer.load(folder_or_model, backend="nnsight")`` keeps the model as Hugging Face built
it (no transformer-lens copy of the activations path) and answers the handle's questions
with `nnsight <https://nnsight.net>`_ traces: ``cache_pass`` / ``run_with_hooks`` open
one trace per call (one per sweep chunk, since the sweeps stack their copies into one
batch), and every transformer-lens hook name the analyses ask for is read or written at
the family's module (``blocks.3.attn.hook_z`` is the input of Llama's
``model.layers.3.self_attn.o_proj``, reshaped to ``[batch, pos, head, d_head]``).

``remote=`` hands each trace to nnsight's own remote execution: ``True`` sends it to the
NDIF server of nnsight's ``CONFIG.API`` (key and host), a URL string to that server, and
``"local"`` runs nnsight's local simulation of it (the trace is serialised as for a server,
deserialised with explorer's modules hidden, then run here), which is what the tests run.
The model is then wrapped as nnsight's ``TransformersModel`` (a remote model needs a
model key; a local folder's key is its path, so a server on the same host can load it).
Which remote runs were made is in docs/scale.md.

Sites that Hugging Face computes inside one module's forward (``hook_resid_mid``,
``attn.hook_pattern``, ``ln_final.hook_scale``) are read-only: a hook that returns a new
value for them raises.

Size: about 500 lines, over the usual 400: one class, ``NNsightHandle``, whose passes and
weights belong together; the family tables are in ``_nnsight_paths`` and what runs inside
a trace in ``_nnsight_trace``.
"""

from __future__ import annotations

import copy as copy_module
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from explorer._cancel import check_cancelled
from explorer._checks import check_index
from explorer.models import _tl
from explorer.models._handle_base import HandleBase, HookFn
from explorer.models._handle_weights import MODEL_WEIGHTS, tl_weight_name
from explorer.models._hf_convert import FAMILIES, PREPEND_BOS, converter, tl_config
from explorer.models._nnsight_paths import _BLOCK_SITES, PATHS, _Paths, paths_of
from explorer.models._nnsight_trace import (
    SavedBytes,
    _apply,
    _nbytes,
    _read,
    _save,
    _total_bytes,
)
from explorer.models._padding import position_ids
from explorer.models._site_parity import site_parity


class NNsightModel(nn.Module):
    """The torch module of an nnsight handle (``as_torch_module``): the Hugging Face model
    (``hf``); calling it gives the logits, without nnsight (for gradient methods such as
    captum). The handle keeps the hook sites and the config itself."""

    def __init__(self, hf_model: nn.Module) -> None:
        super().__init__()
        self.hf = hf_model

    def forward(self, tokens: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        mask = {k: kwargs.pop(k) for k in ("attention_mask", "position_ids") if k in kwargs}
        if kwargs:
            raise ValueError(
                f"the nnsight backend runs whole passes from token ids; got "
                f"{', '.join(sorted(kwargs))}. Allowed: stop_at_layer= on run_with_hooks / "
                "cache_pass; start a pass mid-model by editing "
                "blocks.L.hook_resid_pre in run_with_hooks instead of start_at_layer"
            )
        return self.hf(tokens, **mask).logits  # a padded batch's mask (``_padding``)


class NNsightHandle(HandleBase):
    """A handle (``protocol.Handle``) whose passes are nnsight traces of a Hugging Face model.

    Hook batches keep their size through a pass (nnsight edits a module's input or output
    in place of Hugging Face's own tensors), so the sweeps stack copies of the batch at the
    input instead of fanning out mid-pass (``edits_fan_out`` is False).
    """

    edits_fan_out = False

    def __init__(
        self,
        hf_model: nn.Module,
        *,
        cfg: Any,
        arch: str,
        name: str,
        tokenizer: Any | None = None,
        family: str | None = None,
        paths: _Paths | None = None,
        remote: bool | str = False,
        trace_kwargs: dict[str, Any] | None = None,
        max_saved_bytes: int | None = None,
    ) -> None:
        self.arch = arch
        self.max_saved_bytes = max_saved_bytes
        # what each trace saved, newest last (``SavedBytes``): what a remote trace returns
        self.saved_log: deque[SavedBytes] = deque(maxlen=10_000)
        self.paths = paths or PATHS[arch]
        self.remote = _check_remote(remote)
        self._trace_kwargs = dict(trace_kwargs or {})
        if self.remote:
            self._trace_kwargs["remote"] = self.remote
        self.cfg = cfg  # transformer-lens's config, which describes the model's numbers
        self._sites = self._site_table(cfg)
        super().__init__(
            NNsightModel(hf_model),
            kind="tokens",
            name=name,
            tokenizer=tokenizer,
            family=family,
            counted=hf_model,  # traces run the Hugging Face model: count its passes
        )
        self.nn = _wrap(hf_model, tokenizer, remote=bool(self.remote))
        self._state: dict[str, torch.Tensor] | None = None

    def _hook_table(self) -> dict[str, tuple[int, int, str, str, bool]]:
        return self._sites

    # ------------------------------------------------------------------ sites
    def _site_table(self, cfg: Any) -> dict[str, tuple[int, int, str, str, bool]]:
        """hook name -> (layer, order, module path, "input"/"output"/"weights", writable)."""
        p = self.paths
        keys = {
            "": "",
            "o_proj": p.o_proj,
            "attn": p.attn,
            "ln2": p.ln2,
            "mlp_in": p.mlp_in,
            "gate_up": p.gate_up,
            "down": p.down,
            "q": p.qkv[0],
            "k": p.qkv[1],
            "v": p.qkv[2],
        }
        table: dict[str, tuple[int, int, str, str, bool]] = {
            "hook_embed": (-1, 0, p.embed, "output", True)
        }
        if p.pos_embed is not None:
            # Hugging Face adds one [1, pos, d] table to every row: read-only here
            table["hook_pos_embed"] = (-1, 1, p.pos_embed, "output", False)
        for layer in range(cfg.n_layers):
            for hook, (order, key, where, writable) in _BLOCK_SITES.items():
                rel = keys[key]
                if rel is None:
                    continue
                path = f"{p.layers}.{layer}" + (f".{rel}" if rel else "")
                table[f"blocks.{layer}.{hook}"] = (layer, order, path, where, writable)
        table["ln_final.hook_scale"] = (cfg.n_layers, 0, p.final_norm, "input", False)
        return table

    def _envoy(self, path: str) -> Any:
        node = self.nn
        for part in path.split("."):
            node = node[int(part)] if part.isdigit() else getattr(node, part)
        return node

    # ---------------------------------------------------------------- running
    def _expand(
        self, fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]]
    ) -> dict[str, list[HookFn]]:
        by_name: dict[str, list[HookFn]] = {}
        for name, fn in fwd_hooks:
            names = [name] if isinstance(name, str) else [n for n in self._sites if name(n)]
            for n in names:
                by_name.setdefault(self.check_hook(n), []).append(fn)
        return by_name

    @property
    def returns_gradients(self) -> bool:
        """A server sends back saved values, not their autograd graph."""
        return self.remote in (False, "local")

    @property
    def stops_early(self) -> bool:
        """A trace can stop after a layer (``stop_at_layer``): nnsight's ``tracer.stop()``."""
        return True

    def run_with_hooks(
        self,
        inputs: torch.Tensor,
        fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]],
        *,
        stop_at_layer: int | None = None,
    ) -> torch.Tensor:
        """One nnsight trace with the hooks applied at their modules, in forward order.
        ``stop_at_layer=L`` returns the residual stream entering block ``L`` (after the
        last block for ``L = n_layers``) and stops the pass there, as transformer-lens.
        Inputs are checked unless ``check_inputs`` returned them."""
        inputs = self.check_inputs(inputs)
        out, _ = self._trace(inputs, self._expand(fwd_hooks), stop_at_layer=stop_at_layer)
        return out

    def cache_pass(
        self,
        inputs: torch.Tensor,
        names: str | Sequence[str] | None = None,
        *,
        stop_at_layer: int | None = None,
        fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]] = (),
        select: Callable[[str, torch.Tensor], torch.Tensor] | None = None,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """As ``HandleBase.cache_pass``; the activations (after ``select``) and the
        output (after ``reduce``) are saved inside the trace: only they come back from a
        remote server."""
        inputs = self.check_inputs(inputs)
        by_name = self._expand(fwd_hooks)
        keep = self._resolve_names(names)
        for name in keep:
            by_name.setdefault(name, [])
        return self._trace(
            inputs, by_name, keep=keep, select=select, reduce=reduce, stop_at_layer=stop_at_layer
        )

    def run_reduced(
        self,
        inputs: torch.Tensor,
        fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]],
        reduce: Callable[[torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """``reduce(logits)`` computed inside the trace: only its result is saved (with
        ``remote=``, only that crosses the wire)."""
        inputs = self.check_inputs(inputs)
        out, _ = self._trace(inputs, self._expand(fwd_hooks), reduce=reduce)
        return out

    def _trace(
        self,
        inputs: torch.Tensor,
        by_name: dict[str, list[HookFn]],
        *,
        keep: Sequence[str] = (),
        select: Callable[[str, torch.Tensor], torch.Tensor] | None = None,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
        stop_at_layer: int | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One trace: hooks in forward order, ``keep`` saved, then ``reduce(logits)`` (or
        the residual stream at ``stop_at_layer``). Returns ``(output, {name: saved})``."""
        if stop_at_layer is not None:
            check_index("stop_at_layer", stop_at_layer, self.n_layers + 1, "(0..n_layers)")
            # as transformer-lens: hooks of the blocks not run do not fire
            by_name = {n: f for n, f in by_name.items() if self._sites[n][0] < stop_at_layer}
            keep = [n for n in keep if n in by_name]
            p = self.paths
            at = (
                (self._envoy(f"{p.layers}.{stop_at_layer}"), "input")
                if stop_at_layer < self.n_layers
                else (self._envoy(p.final_norm), "input")
            )
        steps = self._steps(by_name, inputs.shape[0], set(keep), select)
        # the trace body names only plain data, envoys and module-level functions: a remote
        # trace ships it, and a handle would drag the model and transformer-lens along
        traced = self.nn
        check_cancelled()  # a remote trace cannot stop halfway: Cancel lands before the next
        with traced.trace(inputs, **self._mask_kwargs(inputs), **self._trace_kwargs) as tracer:
            saved = {}
            for step in steps:
                _apply(*step, saved)
            saved = _save(saved)
            if stop_at_layer is not None:
                resid = _read(*at)
                out = _save(resid if reduce is None else reduce(resid))
                tracer.stop()
            else:
                logits = traced.output.logits
                out = _save(logits if reduce is None else reduce(logits))
        if self.remote not in (False, "local"):  # the pass ran elsewhere: no hook saw it
            self.spent.forward += 1
            self.spent.examples += len(inputs)
        self._account(out, saved)
        return out, saved

    def _account(self, out: torch.Tensor, saved: dict[str, torch.Tensor]) -> None:
        """Record what one trace saved (what a remote trace sends back), and enforce
        ``max_saved_bytes``."""
        kept = [_nbytes(v) for v in saved.values()]
        output = _nbytes(out)
        total = _total_bytes([out, *saved.values()])
        record = SavedBytes(total, max(kept, default=0), output, tuple(sorted(saved)))
        self.saved_log.append(record)
        if self.max_saved_bytes is not None and record.total > self.max_saved_bytes:
            raise ValueError(
                f"a trace saved {record.total:,} bytes (output {record.output:,}, largest "
                f"activation {record.largest:,}), "
                f"over max_saved_bytes={self.max_saved_bytes:,}: cache fewer hooks or "
                "smaller batches, or raise the budget"
            )

    def _steps(
        self,
        by_name: dict[str, list[HookFn]],
        batch: int,
        keep: set[str],
        select: Callable[[str, torch.Tensor], torch.Tensor] | None,
    ) -> list[tuple]:
        """``_apply`` argument tuples, one per module tensor touched, in forward order
        (a fused query/key/value output carries up to three hooks)."""
        cfg = self.cfg
        view = {
            "heads": (cfg.n_heads, cfg.d_head),
            "batch": batch,
            "centre": self.normalization in ("LN", "LNPre"),
            "eps": float(cfg.eps),
            "fused": self.paths.fused_qkv,
            "select": select,
        }
        groups: dict[tuple[str, str], list[tuple[str, list[HookFn], bool]]] = {}
        order: list[tuple[tuple[int, int], str, str, bool]] = []
        for name in sorted(by_name, key=lambda n: self._sites[n][:2]):
            _, _, path, where, writable = self._sites[name]
            if (path, where) not in groups:
                groups[(path, where)] = []
                order.append((self._sites[name][:2], path, where, writable))
            groups[(path, where)].append((name, by_name[name], name in keep))
        return [
            (self._envoy(path), where, writable, groups[(path, where)], view)
            for _, path, where, writable in order
        ]

    def _mask_kwargs(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """A padded batch's mask for Hugging Face, and (decoders) each token's position
        within its own prompt, so left padding moves no prompt."""
        mask = self.attention_mask(tokens)
        if mask is None:
            return {}
        if FAMILIES.get(self.arch, ("", False))[
            1
        ]:  # an encoder: padded on the right, positions unmoved
            return {"attention_mask": mask}
        return {"attention_mask": mask, "position_ids": position_ids(mask)}

    def hooks(self, fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]]) -> Any:
        raise NotImplementedError(
            f"{self.name} runs as nnsight traces: pass hooks to run_with_hooks, not hooks()"
        )

    # ---------------------------------------------------------------- weights
    def _tl_state(self) -> dict[str, torch.Tensor]:
        """The weights under transformer-lens's names (its converter, run once, kept)."""
        if self._state is None:
            if self.arch not in FAMILIES:
                raise ValueError(
                    f"{self.arch} has no weight converter here: its weights by "
                    "transformer-lens name (W_Q, W_O, W_in, norms, ...) are not read. Analyses "
                    "of activations run on it; those that read weights (composition, OV/QK "
                    "circuits, neuron-to-logit weights) do not"
                )
            with torch.no_grad():
                self._state = converter(self.arch)(self.model.hf, self.cfg)
        return self._state

    def weight(self, name: str, layer: int | None = None) -> torch.Tensor:
        """As ``WeightsMixin.weight``, read from the converted weights."""
        name = tl_weight_name(name)
        state = self._tl_state()
        if name in MODEL_WEIGHTS:
            key = {"W_E": "embed.W_E", "W_pos": "pos_embed.W_pos", "W_U": "unembed.W_U"}.get(
                name, "unembed.b_U"
            )
            if layer is not None:
                raise ValueError(f"{name} belongs to the whole model: pass no layer")
            if key == "unembed.b_U" and key not in state:
                return torch.zeros(self.cfg.d_vocab_out)
            if key not in state:
                raise ValueError(f"{self.name} has no {name}")
            return state[key].detach()
        if layer is None:
            raise ValueError(f"{name} is a per-layer weight: pass layer=0..{self.n_layers - 1}")
        layer = self.check_layer(layer)
        part = "mlp" if name in ("W_in", "W_out", "b_out") else "attn"
        key = f"blocks.{layer}.{part}.{name}"
        if key not in state:  # grouped-query keys/values: transformer-lens's _W_K / _W_V
            w = state[f"blocks.{layer}.attn._{name}"]
            return w.repeat_interleave(self.n_heads // w.shape[0], dim=0).detach()
        return state[key].detach()

    def set_weight(
        self, name: str, value: torch.Tensor, layer: int | None = None, *, head: int | None = None
    ) -> None:
        raise ValueError(
            f"{self.name} runs as nnsight traces of the Hugging Face model: its weights by "
            "name are a converted copy, not written back; edit the Hugging Face model itself"
        )

    def final_norm(self) -> tuple[str | None, torch.Tensor | None, torch.Tensor | None]:
        state = self._tl_state()
        kind = self.normalization
        if kind is None:
            return None, None, None
        return kind, state.get("ln_final.w"), state.get("ln_final.b")

    @property
    def kv_hook_heads(self) -> int | None:
        """Hugging Face's key/value heads: ``hook_k`` / ``hook_v`` are its projections."""
        cfg = self.cfg
        return int(cfg.n_key_value_heads or cfg.n_heads)

    def block_norm(
        self, layer: int, which: str = "ln1"
    ) -> tuple[str | None, torch.Tensor | None, torch.Tensor | None]:
        """As ``WeightsMixin.block_norm``, read from the converted weights (there are no
        transformer-lens blocks here)."""
        if which not in ("ln1", "ln2"):
            raise ValueError(f"unknown norm {which!r}: choose one of ln1, ln2")
        prefix = f"blocks.{self.check_layer(layer)}.{which}"
        state, kind = self._tl_state(), self.normalization
        if kind is None or f"{prefix}.w" not in state:
            return None, None, None
        return kind, state[f"{prefix}.w"].detach(), state.get(f"{prefix}.b")

    def resid_to_logits(self, resid: torch.Tensor) -> torch.Tensor:
        hf_model = self.model.hf
        norm = hf_model.get_submodule(self.paths.final_norm)
        shape = resid.shape
        x = norm(resid.reshape(1, -1, shape[-1]))
        return hf_model.get_output_embeddings()(x).reshape(*shape[:-1], -1)

    def token_embedding(self) -> nn.Module:
        return self.model.hf.get_input_embeddings()

    def copy(self) -> NNsightHandle:
        other = NNsightHandle(
            copy_module.deepcopy(self.model.hf),
            cfg=self.cfg,
            arch=self.arch,
            paths=self.paths,
            name=self.name,
            tokenizer=self.tokenizer,
            family=self.family,
            remote=self.remote,
            trace_kwargs={k: v for k, v in self._trace_kwargs.items() if k != "remote"},
            max_saved_bytes=self.max_saved_bytes,
        )
        self._copy_fields(other)
        other.config = self.config
        return other


def _check_remote(remote: bool | str) -> bool | str:
    if remote is True or remote is False or remote == "local":
        return remote
    if isinstance(remote, str) and remote.startswith(("http://", "https://")):
        return remote
    raise ValueError(
        f"remote={remote!r}: choose False, True (nnsight's configured NDIF host), "
        "'local' (nnsight's local simulation) or a server URL such as 'http://127.0.0.1:8001'"
    )


def _wrap(hf_model: nn.Module, tokenizer: Any | None, *, remote: bool) -> Any:
    """The nnsight object traced: a plain ``NNsight`` locally, a ``TransformersModel``
    (which has the model key a server asks for) when traces go remote."""
    if not remote:
        # lazy: nnsight loads only when this backend is chosen (backend="nnsight")
        from nnsight import NNsight

        return NNsight(hf_model)
    if tokenizer is None:
        raise ValueError(
            "remote traces need the model's tokenizer (nnsight's TransformersModel builds a "
            "text-generation pipeline around the model): pass tokenizer= or open a folder "
            "that has one"
        )
    # lazy: remote traces need nnsight's Hugging Face layer too, only when remote is asked
    import nnsight
    from nnsight.modeling import huggingface

    # a server has torch and nnsight, not explorer: the hook functions and metrics a trace
    # calls travel by value (their source), not as imports
    nnsight.register("explorer")
    # lazy: like nnsight above: only a remote trace wraps the model in TransformersModel
    from nnsight.modeling.transformers import TransformersModel

    origin = str(getattr(hf_model.config, "name_or_path", "") or "")
    if origin and Path(origin).is_dir():
        # nnsight canonicalises a repo id on the Hub; a local folder is its own id
        huggingface._ID_CACHE[origin] = origin
    return TransformersModel(hf_model, tokenizer=tokenizer, task="text-generation")


def load(
    hf_model: nn.Module,
    *,
    tokenizer: Any | None = None,
    name: str,
    remote: bool | str = False,
    trace_kwargs: dict[str, Any] | None = None,
    max_saved_bytes: int | None = None,
) -> NNsightHandle:
    """An ``NNsightHandle`` for a ``transformers`` model of a family explorer maps."""
    arch = type(hf_model).__name__
    found = paths_of(hf_model)
    if found is None:
        known = ", ".join(f"{FAMILIES[a][0]} ({a})" for a in PATHS)
        raise ValueError(
            f"the nnsight backend maps the modules of {known}, and of any model laid out as "
            f"Llama (model.layers.N.self_attn.q_proj/k_proj/v_proj/o_proj, "
            f"mlp.gate_proj/up_proj/down_proj, input_layernorm, post_attention_layernorm) "
            f"or as Phi-1/2 (self_attn.dense, mlp.fc1/fc2, model.final_layernorm); "
            f"{arch} is neither"
        )
    paths, layout = found
    hf_model.eval()
    if getattr(hf_model.config, "_attn_implementation", "eager") != "eager":
        hf_model.config._attn_implementation = "eager"  # attention patterns come back
    dtype = next(hf_model.parameters()).dtype
    cfg = tl_config(hf_model.config, layout, dtype, strict=False)
    if layout != arch:  # laid out as Llama: its own norm kind and epsilon
        norm = hf_model.get_submodule(paths.final_norm)
        if isinstance(norm, nn.LayerNorm):
            cfg.normalization_type = "LN"
        cfg.eps = float(getattr(norm, "eps", getattr(norm, "variance_epsilon", cfg.eps)))
        cfg.original_architecture = arch
    family = FAMILIES[arch][0] if arch in FAMILIES else arch
    handle = NNsightHandle(
        hf_model,
        cfg=cfg,
        arch=arch,
        paths=paths,
        name=name,
        tokenizer=tokenizer,
        family=f"{family} via nnsight",
        remote=remote,
        trace_kwargs=trace_kwargs,
        max_saved_bytes=max_saved_bytes,
    )
    handle.prepend_bos = family in PREPEND_BOS
    handle.config = _tl.config_of(_ConfigView(cfg))
    if not remote:  # a server is not called at load: its parity is the tests' (docs/scale.md)
        handle.parity = site_parity(handle)
    return handle


class _ConfigView:
    """What ``_tl.config_of`` reads from a model: its ``cfg``."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
