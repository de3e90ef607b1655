"""The nnsight backend: a ``ModelHandle`` over a Hugging Face model, run as nnsight traces.

``explorer.load(folder_or_model, backend="nnsight")`` keeps the model as Hugging Face built
it (no transformer-lens copy of the activations path) and answers the handle's questions
with `nnsight <https://nnsight.net>`_ traces: ``run_with_cache`` / ``run_with_hooks`` open
one trace per call (one per sweep chunk, since the sweeps stack their copies into one
batch), and every transformer-lens hook name the analyses ask for is read or written at
the family's module (``blocks.3.attn.hook_z`` is the input of Llama's
``model.layers.3.self_attn.o_proj``, reshaped to ``[batch, pos, head, d_head]``).

``remote=True`` hands each trace to nnsight's own remote execution (an NDIF server; the
key and endpoint are nnsight's ``CONFIG.API``). That path was not run here: see
docs/scale.md.

Sites that Hugging Face computes inside one module's forward (``hook_resid_mid``,
``attn.hook_pattern``, ``ln_final.hook_scale``) are read-only: a hook that returns a new
value for them raises.
"""

from __future__ import annotations

import copy as copy_module
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from explorer.models.handle import HookFn, ModelHandle


@dataclass(frozen=True)
class _Paths:
    """Module paths of one family, relative to the model (``layers``) or to a block."""

    layers: str
    final_norm: str
    attn: str
    o_proj: str
    ln2: str | None  # the norm before the MLP (None: parallel attention and MLP)
    mlp_in: str
    down: str
    embed: str = "model.embed_tokens"
    gate_up: str | None = None  # gated MLPs: the linear half (``hook_pre_linear``)
    pos_embed: str | None = None  # learned positions (GPT-2)


_LLAMA = _Paths(
    "model.layers",
    "model.norm",
    "self_attn",
    "self_attn.o_proj",
    "post_attention_layernorm",
    "mlp.gate_proj",
    "mlp.down_proj",
    gate_up="mlp.up_proj",
)
PATHS: dict[str, _Paths] = {
    "GPT2LMHeadModel": _Paths(
        "transformer.h",
        "transformer.ln_f",
        "attn",
        "attn.c_proj",
        "ln_2",
        "mlp.c_fc",
        "mlp.c_proj",
        embed="transformer.wte",
        pos_embed="transformer.wpe",
    ),
    "GPTNeoXForCausalLM": _Paths(
        "gpt_neox.layers",
        "gpt_neox.final_layer_norm",
        "attention",
        "attention.dense",
        None,
        "mlp.dense_h_to_4h",
        "mlp.dense_4h_to_h",
        embed="gpt_neox.embed_in",
    ),
    "LlamaForCausalLM": _LLAMA,
    "Qwen2ForCausalLM": _LLAMA,
    "GemmaForCausalLM": _LLAMA,
    "MistralForCausalLM": _LLAMA,
}

# per-block hook -> (order within the block's forward, module key, "input"/"output", writable)
_BLOCK_SITES: dict[str, tuple[int, str, str, bool]] = {
    "hook_resid_pre": (0, "", "input", True),
    "attn.hook_z": (1, "o_proj", "input", True),
    "hook_attn_out": (2, "o_proj", "output", True),
    "attn.hook_pattern": (3, "attn", "weights", False),
    "hook_resid_mid": (4, "ln2", "input", False),
    "mlp.hook_pre": (5, "mlp_in", "output", True),
    "mlp.hook_pre_linear": (6, "gate_up", "output", True),
    "mlp.hook_post": (7, "down", "input", True),
    "hook_mlp_out": (8, "down", "output", True),
    "hook_resid_post": (9, "", "output", True),
}


class _Hook:
    """What a transformer-lens hook function receives as ``hook``: its name (and layer)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def layer(self) -> int:
        return int(self.name.split(".")[1])


class NNsightModel(nn.Module):
    """The object behind ``handle.model``: the Hugging Face model (``hf``), the
    transformer-lens config its numbers are described by (``cfg``), and the hook names.
    Calling it gives the logits, without nnsight (for gradient methods such as captum)."""

    def __init__(self, hf_model: nn.Module, cfg: Any, hook_names: Sequence[str]) -> None:
        super().__init__()
        self.hf = hf_model
        self.cfg = cfg
        self.hook_dict = dict.fromkeys(hook_names)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.hf(tokens).logits


class NNsightHandle(ModelHandle):
    """A ``ModelHandle`` whose passes are nnsight traces of a Hugging Face model.

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
        remote: bool = False,
        trace_kwargs: dict[str, Any] | None = None,
    ) -> None:
        from nnsight import NNsight

        self.arch = arch
        self.paths = PATHS[arch]
        self.remote = remote
        self._trace_kwargs = dict(trace_kwargs or {})
        if remote:
            self._trace_kwargs["remote"] = True
        self._sites = self._site_table(cfg)
        shim = NNsightModel(hf_model, cfg, list(self._sites))
        super().__init__(shim, kind="tokens", name=name, tokenizer=tokenizer, family=family)
        self.nn = NNsight(hf_model)
        self._state: dict[str, torch.Tensor] | None = None
        self._batch = 1

    def _counted_module(self, model: nn.Module) -> nn.Module:
        # traces run the Hugging Face model, not the shim: count its passes
        return model.hf  # type: ignore[return-value]

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

    def _to_tl(self, name: str, value: Any) -> torch.Tensor:
        """A module's tensor in the shape transformer-lens gives the hook."""
        if name.endswith("attn.hook_z"):
            cfg = self.model.cfg
            return value.reshape(*value.shape[:-1], cfg.n_heads, cfg.d_head)
        if name == "hook_pos_embed":
            return value.expand(self._batch, *value.shape[1:])
        if name == "ln_final.hook_scale":
            x = value.float()
            if self.normalization in ("LN", "LNPre"):
                x = x - x.mean(-1, keepdim=True)
            eps = float(self.model.cfg.eps)
            return (x.pow(2).mean(-1, keepdim=True) + eps).sqrt().to(value.dtype)
        return value

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

    def run_with_hooks(
        self,
        inputs: torch.Tensor,
        fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]],
        *,
        stop_at_layer: int | None = None,
        _checked: bool = False,
    ) -> torch.Tensor:
        """One nnsight trace with the hooks applied at their modules, in forward order."""
        if stop_at_layer is not None:
            raise ValueError(f"{self.name} (nnsight backend) cannot stop after a layer")
        return self.run_reduced(inputs, fwd_hooks, lambda logits: logits, _checked=_checked)

    def run_reduced(
        self,
        inputs: torch.Tensor,
        fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]],
        reduce: Callable[[torch.Tensor], torch.Tensor],
        *,
        _checked: bool = False,
    ) -> torch.Tensor:
        """``reduce(logits)`` computed inside the trace: only its result is saved (with
        ``remote=True``, only that crosses the wire)."""
        if not _checked:
            inputs = self.check_inputs(inputs)
        by_name = self._expand(fwd_hooks)
        self._batch = inputs.shape[0]
        order = sorted(by_name, key=lambda n: self._sites[n][:2])
        with self.nn.trace(inputs, **self._trace_kwargs):
            for name in order:
                self._apply(name, by_name[name])
            value = reduce(self.nn.output.logits).save()
        if self.remote:  # the pass ran elsewhere: no local hook saw it
            self.spent.forward += 1
            self.spent.examples += len(inputs)
        return value

    def _apply(self, name: str, fns: list[HookFn]) -> None:
        _, _, path, where, writable = self._sites[name]
        envoy = self._envoy(path)
        if where == "weights":
            raw = envoy.output[1]
            if raw is None:
                raise ValueError(
                    f"{self.name} computes attention without returning its pattern; "
                    "load it with attn_implementation='eager'"
                )
        else:
            raw = envoy.input if where == "input" else envoy.output
        act = self._to_tl(name, raw)
        hook = _Hook(name)
        for fn in fns:
            new = fn(act, hook)
            if new is not None:
                if not writable:
                    raise ValueError(
                        f"{name} is read-only on the nnsight backend: Hugging Face computes "
                        "it inside one module, so an edit would not reach the rest of the pass"
                    )
                act = new
        if writable:  # always write back, so gradients reach the tensor the hooks saw
            value = act.reshape(raw.shape)
            if where == "input":
                envoy.input = value
            else:
                envoy.output = value

    def hooks(self, fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]]) -> Any:
        raise NotImplementedError(
            f"{self.name} runs as nnsight traces: pass hooks to run_with_hooks, not hooks()"
        )

    # ---------------------------------------------------------------- weights
    def _tl_state(self) -> dict[str, torch.Tensor]:
        """The weights under transformer-lens's names (its converter, run once, kept)."""
        if self._state is None:
            from explorer.models import hf

            with torch.no_grad():
                self._state = hf._converter(self.arch)(self.model.hf, self.model.cfg)
        return self._state

    def weight(self, name: str, layer: int | None = None) -> torch.Tensor:
        from explorer.models.handle import _LAYER_WEIGHTS, _MODEL_WEIGHTS

        state = self._tl_state()
        if name in _MODEL_WEIGHTS:
            key = {"W_E": "embed.W_E", "W_pos": "pos_embed.W_pos", "W_U": "unembed.W_U"}.get(
                name, "unembed.b_U"
            )
            if layer is not None:
                raise ValueError(f"{name} belongs to the whole model: pass no layer")
            if key == "unembed.b_U" and key not in state:
                return torch.zeros(self.model.cfg.d_vocab_out)
            if key not in state:
                raise ValueError(f"{self.name} has no {name}")
            return state[key].detach()
        if name not in _LAYER_WEIGHTS:
            raise ValueError(
                f"unknown weight {name!r}: choose one of {', '.join(_MODEL_WEIGHTS + _LAYER_WEIGHTS)}"
            )
        if layer is None:
            raise ValueError(f"{name} is a per-layer weight: pass layer=0..{self.n_layers - 1}")
        layer = self.check_layer(layer)
        part = "mlp" if name in ("W_in", "W_out", "b_out") else "attn"
        key = f"blocks.{layer}.{part}.{name}"
        if key not in state:  # grouped-query keys/values: transformer-lens's _W_K / _W_V
            w = state[f"blocks.{layer}.attn._{name}"]
            return w.repeat_interleave(self.n_heads // w.shape[0], dim=0).detach()
        return state[key].detach()

    def final_norm(self) -> tuple[str | None, torch.Tensor | None, torch.Tensor | None]:
        state = self._tl_state()
        kind = self.normalization
        if kind is None:
            return None, None, None
        return kind, state.get("ln_final.w"), state.get("ln_final.b")

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
            cfg=self.model.cfg,
            arch=self.arch,
            name=self.name,
            tokenizer=self.tokenizer,
            family=self.family,
            remote=self.remote,
            trace_kwargs={k: v for k, v in self._trace_kwargs.items() if k != "remote"},
        )
        other.parity, other.prepend_bos, other.config = self.parity, self.prepend_bos, self.config
        return other


def load(
    hf_model: nn.Module,
    *,
    tokenizer: Any | None = None,
    name: str,
    remote: bool = False,
    trace_kwargs: dict[str, Any] | None = None,
) -> NNsightHandle:
    """An ``NNsightHandle`` for a ``transformers`` model of a family explorer maps."""
    from explorer.models import _tl, hf

    arch = type(hf_model).__name__
    if arch not in PATHS:
        known = ", ".join(f"{hf.FAMILIES[a][0]} ({a})" for a in PATHS)
        raise ValueError(f"the nnsight backend maps the modules of {known}; got {arch}")
    hf_model.eval()
    if getattr(hf_model.config, "_attn_implementation", "eager") != "eager":
        hf_model.config._attn_implementation = "eager"  # attention patterns come back
    cfg = hf.tl_config(hf_model.config, arch)
    family = hf.FAMILIES[arch][0]
    handle = NNsightHandle(
        hf_model,
        cfg=cfg,
        arch=arch,
        name=name,
        tokenizer=tokenizer,
        family=f"{family} via nnsight",
        remote=remote,
        trace_kwargs=trace_kwargs,
    )
    handle.prepend_bos = family in hf.PREPEND_BOS
    handle.config = _tl.config_of(_ConfigView(cfg))
    return handle


class _ConfigView:
    """What ``_tl.config_of`` reads from a model: its ``cfg``."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
