"""The light transformer computes what transformer-lens's HookedTransformer computes, and
loading a shipped checkpoint with it imports neither transformer-lens nor captum."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformer_lens.utilities import get_act_name

from explorer.analysis import ablation_sweep, head_scores, metrics
from explorer.data import repeated_tokens
from explorer.models import light, light_hooks, zoo
from explorer.models.config import TransformerConfig

ROOT = Path(__file__).resolve().parents[2]

CONFIGS = {
    "attn-only LN": TransformerConfig(
        n_layers=2, d_model=32, n_heads=4, d_vocab=30, n_ctx=24, normalization="LN", seed=3
    ),
    "attn-only no norm, d_head 6": TransformerConfig(
        n_layers=2, d_model=30, n_heads=4, d_head=6, d_vocab=20, n_ctx=16, seed=4
    ),
    "MLP relu LN": TransformerConfig(
        n_layers=2, d_model=32, n_heads=2, d_mlp=48, d_vocab=25, n_ctx=16, normalization="LN",
        seed=5,
    ),
    "MLP gelu, d_vocab_out": TransformerConfig(
        n_layers=1, d_model=24, n_heads=4, d_mlp=40, d_vocab=14, d_vocab_out=13, n_ctx=3,
        act_fn="gelu", seed=6,
    ),
}  # fmt: skip


def _pair(cfg: TransformerConfig):
    """A transformer-lens model (seeded init, perturbed biases and norms) and a light model
    holding the same weights."""
    ref = zoo.transformer(cfg)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(cfg.seed)
        for name, p in ref.model.named_parameters():
            if "W_" not in name:  # biases start at 0, norms at 1: make them matter
                p.add_(0.1 * torch.randn(p.shape, generator=gen))
    ours = zoo.transformer(cfg, light=True)
    assert light.is_light(ours.model) and not light.is_light(ref.model)
    ours.model.load_state_dict(ref.model.state_dict(), strict=True)
    return ref, ours


@pytest.mark.parametrize("case", CONFIGS)
def test_every_hook_and_the_logits_match_transformer_lens(case):
    cfg = CONFIGS[case]
    ref, ours = _pair(cfg)
    assert list(ours.model.state_dict()) == list(ref.model.state_dict())
    assert ours.hook_names == ref.hook_names  # same names, same order
    for field in ("n_layers", "d_model", "n_heads", "d_head", "d_vocab_out", "n_ctx", "attn_only",
                  "normalization_type", "positional_embedding_type", "attention_dir", "eps",
                  "parallel_attn_mlp", "use_attn_result", "use_hook_mlp_in", "default_prepend_bos",
                  "original_architecture", "act_fn"):  # fmt: skip
        assert getattr(ours.model.cfg, field) == getattr(ref.model.cfg, field), field
    tokens = torch.randint(
        0, cfg.d_vocab, (3, cfg.n_ctx), generator=torch.Generator().manual_seed(0)
    )
    ref_logits, ref_cache = ref.model.run_with_cache(tokens)
    logits, cache = ours.model.run_with_cache(tokens)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-5, atol=1e-5)
    fired = {name for name in ref_cache.keys()}
    assert set(cache) == fired
    for name in fired:
        torch.testing.assert_close(cache[name], ref_cache[name], rtol=1e-5, atol=1e-5, msg=name)
    for weight in ("W_E", "W_U", "b_U", "W_Q", "W_K", "W_V", "W_O", "b_O", "W_pos"):
        torch.testing.assert_close(getattr(ours.model, weight), getattr(ref.model, weight))
    # entering mid-model and stopping early, as the sweeps and the top-k streaming do
    resid = ref_cache["blocks.0.hook_resid_post"]
    torch.testing.assert_close(
        ours.model(resid, start_at_layer=1), ref.model(resid, start_at_layer=1)
    )
    torch.testing.assert_close(
        ours.model(tokens, stop_at_layer=1), ref.model(tokens, stop_at_layer=1)
    )
    assert ours.runs_from_layer and ours.stops_early


def test_gradients_and_hook_edits_match():
    cfg = CONFIGS["MLP relu LN"]
    ref, ours = _pair(cfg)
    tokens = torch.randint(0, cfg.d_vocab, (2, 10), generator=torch.Generator().manual_seed(1))

    def zero_head(act, hook):
        act[:, :, 1] = 0.0
        return act

    hooks = [("blocks.0.attn.hook_z", zero_head)]
    for model in (ref, ours):
        model.model.zero_grad()
        model.run_with_hooks(tokens, hooks).logsumexp(-1).sum().backward()
    torch.testing.assert_close(
        ours.run_with_hooks(tokens, hooks), ref.run_with_hooks(tokens, hooks), rtol=1e-5, atol=1e-5
    )
    grads = dict(ref.model.named_parameters())
    for name, p in ours.model.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, rtol=1e-4, atol=1e-5, msg=name)
    assert all(not hp.fwd_hooks for hp in ours.model.hook_dict.values())  # removed after


def test_analyses_agree_on_the_shipped_model():
    """The shipped quickstart model loads light; head scores and a sweep equal the
    transformer-lens model's with the same weights."""
    import explorer

    model = explorer.load("shipped:quickstart-induction")
    assert light.is_light(model.model)
    again = explorer.load(model.model)  # the bare module is recognised, not re-wrapped
    assert again.model is model.model and again.kind == "tokens" and again.n_heads == 4
    ref = model.copy()
    ref.model = light.to_transformer_lens(model.model)
    tokens = repeated_tokens(8, 20, model.d_vocab, seed=1)
    ours_scores, ref_scores = head_scores(model, tokens), head_scores(ref, tokens)
    for kind in ("induction", "previous_token"):
        torch.testing.assert_close(
            torch.as_tensor(ours_scores.to_dataframe()[kind].to_numpy().copy()),
            torch.as_tensor(ref_scores.to_dataframe()[kind].to_numpy().copy()),
            rtol=1e-5, atol=1e-5,
        )  # fmt: skip
    loss = metrics.repeated_half_loss(tokens)
    ours_sweep = ablation_sweep(model, tokens, metric=loss, ablation="mean").to_dataframe()
    ref_sweep = ablation_sweep(ref, tokens, metric=loss, ablation="mean").to_dataframe()
    ours_sweep, ref_sweep = ours_sweep["effect"].to_numpy(), ref_sweep["effect"].to_numpy()
    torch.testing.assert_close(
        torch.tensor(ours_sweep), torch.tensor(ref_sweep), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize(
    "kind,layer",
    [(k, 1) for k in ("pattern", "attn", "z", "q", "k", "v", "attn_scores", "result", "pre", "post",
                      "mlp_post", "resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out",
                      "scale", "normalized")]
    + [(k, None) for k in ("embed", "pos_embed", "scale", "normalized", "blocks.0.hook_resid_pre")],
)  # fmt: skip
def test_act_name_is_transformer_lens_get_act_name(kind, layer):
    assert light_hooks.act_name(kind, layer) == get_act_name(kind, layer)


def test_unsupported_configs_are_refused_by_name():
    rotary = TransformerConfig(
        n_layers=1, d_model=16, n_heads=2, d_vocab=10, n_ctx=8, positional_embedding="rotary"
    )
    assert not light.supports(rotary)
    with pytest.raises(ValueError, match="learned positions.*rotary"):
        light.build(rotary)
    assert not light.is_light(zoo.transformer(rotary, light=True).model)  # falls back to TL


def test_first_widget_path_imports_no_transformer_lens_or_captum():
    """The quickstart's first cells (imports, the shipped model, the attention view), in a
    fresh interpreter: the heavy libraries stay unimported until a later analysis needs them."""
    code = (
        "import sys, json, explorer\n"
        "from explorer.analysis import ablate, ablation_sweep, head_scores, metrics\n"
        "from explorer.data import repeated_tokens\n"
        "from explorer.views import AttentionView, InterventionPanel, PatchingView, show\n"
        "model = explorer.load('shipped:quickstart-induction')\n"
        "view = AttentionView(model, repeated_tokens(8, 20, model.d_vocab, seed=1))\n"
        "heavy = ['transformer_lens', 'transformers', 'captum', 'nnsight', 'datasets', 'pandas',"
        " 'plotly', 'scipy']\n"
        "print(json.dumps({'loaded': [m for m in heavy if m in sys.modules],"
        " 'drawn': bool(view.scores)}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"loaded": [], "drawn": True}
