"""``train_sae``: an SAE or transcoder trained by SAELens's ``SAETrainer`` on a handle's
activations, in a resumable run folder.

explorer writes no SAE trainer: SAELens's ``SAETrainer`` does every step (its losses, its
optimizer and schedules, its dead-feature bookkeeping, its tqdm bar). explorer feeds it
``ActivationStream`` batches from any hook of any handle (toy, Hugging Face, plain module;
transformer-lens or nnsight) and keeps the run on disk the way every explorer run is kept::

    run/
      manifest.json         format "explorer-sae-run": hooks, architecture, settings, status,
                            the published checkpoints
      metrics.jsonl         one row per logged step: mse_loss, l0, explained_variance, ...
      checkpoints/step_000040/  cfg.json + sae_weights.safetensors (SAELens's format) +
                            optimizer.safetensors/.json (explorer's) + trainer.json/.safetensors
                            (the trainer's counters, schedules and firing statistics)
      sae/                  the trained inference SAE, SAELens's format (``features.load_sae``)

Nothing is pickled. A checkpoint is staged and renamed into place, then the manifest is
replaced: a kill at any moment leaves the last published checkpoint, and calling
``train_sae`` again with the same ``run`` continues from it with the exact batches and state
an unbroken run would have had (tested: the two end with equal weights).

Architectures: ``"topk"``, ``"batchtopk"``, ``"standard"`` (L1), ``"jumprelu"``, and
``"transcoder"`` (``hook`` the MLP's input, ``hook_out`` its output; L1-trained, saved as
SAELens's ``Transcoder``). ``n_batches_for_norm_estimate`` is 4: the activation norm scale
(``normalize=True``) is estimated on 4 batches, then folded into the weights by SAELens.

>>> import tempfile
>>> from explorer.models import zoo
>>> model = zoo.attention_only_transformer(n_layers=1, d_model=8, d_vocab=10, n_ctx=6)
>>> tokens = torch.randint(0, 10, (16, 6), generator=torch.Generator().manual_seed(0))
>>> sae = train_sae(model, tokens, "blocks.0.hook_resid_post", d_sae=16, k=2,
...                 n_samples=960, samples_per_step=32, progress=False)
>>> sae
SparseAutoencoder(topk at blocks.0.hook_resid_post, 8 -> 16 features)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from explorer.features import SparseAutoencoder, load_sae
from explorer.training.sae_run import SAERun
from explorer.training.sae_stream import ActivationStream

__all__ = ["SAE_ARCHITECTURES", "train_sae"]

SAE_ARCHITECTURES = ("topk", "batchtopk", "standard", "jumprelu", "transcoder")
NORM_BATCHES = 4  # SAETrainerConfig.n_batches_for_norm_estimate (SAELens's default is 1000)


def train_sae(
    model: Any,
    inputs: Any,
    hook: str,
    *,
    d_sae: int,
    architecture: str = "topk",
    k: int = 8,
    l1_coefficient: float = 1e-3,
    l0_coefficient: float = 1e-3,
    hook_out: str | None = None,
    n_samples: int = 100_000,
    samples_per_step: int = 256,
    batch_size: int = 16,
    lr: float = 3e-4,
    normalize: bool = True,
    run: str | Path | None = None,
    checkpoints: int = 4,
    log_every: int = 10,
    seed: int = 0,
    progress: bool = True,
    options: dict[str, Any] | None = None,
) -> SparseAutoencoder:
    """Train an SAE on ``model``'s activations at ``hook`` over ``inputs``.

    Args:
        model: any handle. inputs: what it takes (tokens ``[batch, pos]``, images ...).
        hook: the hook it reads. hook_out: the hook a transcoder predicts (its MLP's output).
        d_sae: features. architecture: one of ``SAE_ARCHITECTURES``.
        k: active features (topk, batchtopk). l1_coefficient: standard and transcoder
            sparsity. l0_coefficient: jumprelu sparsity. options: more SAELens config fields.
        n_samples: activation vectors to train on (positions count one each).
        samples_per_step: the SAE's batch. batch_size: inputs per model pass.
        run: a folder to keep the run in (resumed when it holds one). checkpoints: how many.
    """
    # lazy: sae_lens (seconds to import, loads transformer-lens and datasets) is needed only when training starts
    import sae_lens
    from sae_lens.config import SAETrainerConfig

    if architecture not in SAE_ARCHITECTURES:
        raise ValueError(
            f"architecture {architecture!r} is not trained here: use one of {list(SAE_ARCHITECTURES)}"
        )
    if (architecture == "transcoder") != (hook_out is not None):
        raise ValueError(
            "a transcoder needs hook_out (the hook it predicts, e.g. 'blocks.0.hook_mlp_out'); "
            f"architecture {architecture!r} takes no hook_out"
            if architecture == "transcoder"
            else f"hook_out is for architecture='transcoder', not {architecture!r}"
        )
    hooks = [hook] if hook_out is None else [hook, hook_out]
    flatten = hook.endswith("hook_z")
    stream = ActivationStream(
        model,
        inputs,
        hooks,
        samples_per_step=samples_per_step,
        batch_size=batch_size,
        seed=seed,
        flatten_heads=flatten,
    )
    d_in = stream.widths[0]
    d_out = stream.widths[1] if hook_out is not None else None
    normalize = normalize and architecture != "transcoder"
    settings = {
        "architecture": architecture, "hooks": hooks, "d_in": d_in, "d_sae": int(d_sae),
        "k": int(k), "l1_coefficient": float(l1_coefficient), "l0_coefficient": float(l0_coefficient),
        "n_samples": int(n_samples), "samples_per_step": int(samples_per_step),
        "batch_size": int(batch_size), "lr": float(lr), "normalize": normalize,
        "seed": int(seed), "options": dict(options or {}), "model": model.name,
        "model_fingerprint": model.fingerprint(), "n_inputs": stream.n_inputs,
    }  # fmt: skip
    saved = SAERun.open_or_create(run, settings) if run is not None else None
    if saved is not None and saved.status == "complete":
        return _named(load_sae(saved.sae_folder(), model=model), saved)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sae = _training_sae(
            sae_lens,
            architecture,
            d_in,
            d_out,
            d_sae,
            k,
            l1_coefficient,
            l0_coefficient,
            normalize,
            hooks,
            flatten,
            options,
        )
    total = int(n_samples) - int(n_samples) % int(samples_per_step) or int(samples_per_step)
    cfg = SAETrainerConfig(
        total_training_samples=total,
        train_batch_size_samples=int(samples_per_step),
        lr=float(lr),
        lr_end=float(lr),
        n_checkpoints=int(checkpoints) if saved is not None else 0,
        checkpoint_path=None,
        n_batches_for_norm_estimate=NORM_BATCHES,
        dead_feature_window=max(1, min(1000, total // samples_per_step // 4)),
        feature_sampling_window=max(1, min(2000, total // samples_per_step // 2)),
    )
    start = saved.resume_into(sae) if saved is not None else None
    trainer = sae_lens.SAETrainer(cfg, sae, data_provider=iter(()), save_checkpoint_fn=None)
    if start is not None:
        saved.load_trainer(trainer, start)
    if normalize and trainer.activation_scaler.scaling_factor is None:
        trainer.activation_scaler.estimate_scaling_factor(
            d_in=d_in, data_provider=stream.batches(0), n_batches_for_norm_estimate=NORM_BATCHES
        )
    trainer.data_provider = stream.batches(trainer.n_training_samples)
    trainer.checkpoint_thresholds = [
        t for t in trainer.checkpoint_thresholds if t >= trainer.n_training_samples
    ]
    if saved is not None:
        trainer.save_checkpoint_fn = lambda checkpoint_path: saved.save_checkpoint(trainer)
    _log_steps(trainer, saved, log_every)
    if not progress:
        trainer._update_pbar = lambda *a, **kw: None
    trainer.fit()
    out = _inference(sae_lens, sae, architecture, hook, hook_out)
    if saved is not None:
        saved.finish(out)
        return _named(load_sae(saved.sae_folder(), model=model), saved)
    return out


def _named(sae: SparseAutoencoder, run: SAERun) -> SparseAutoencoder:
    sae.name = run.path.name  # the run's folder names what it trained
    return sae


def _training_sae(
    sae_lens, architecture, d_in, d_out, d_sae, k, l1, l0, normalize, hooks, flatten, options
):
    classes = {
        "topk": (sae_lens.TopKTrainingSAE, sae_lens.TopKTrainingSAEConfig, {"k": k}),
        "batchtopk": (sae_lens.BatchTopKTrainingSAE, sae_lens.BatchTopKTrainingSAEConfig, {"k": k}),
        "standard": (sae_lens.StandardTrainingSAE, sae_lens.StandardTrainingSAEConfig, {"l1_coefficient": l1}),
        "jumprelu": (sae_lens.JumpReLUTrainingSAE, sae_lens.JumpReLUTrainingSAEConfig, {"l0_coefficient": l0}),
        "transcoder": (_transcoder_class(sae_lens), sae_lens.StandardTrainingSAEConfig, {"l1_coefficient": l1, "apply_b_dec_to_input": False}),
    }  # fmt: skip
    module, config, extra = classes[architecture]
    fields = dict(extra, **(options or {}))
    if normalize:
        fields["normalize_activations"] = "expected_average_only_in"
    if flatten:
        fields["reshape_activations"] = "hook_z"
    try:
        cfg = config(d_in=int(d_in), d_sae=int(d_sae), **fields)
    except TypeError as err:
        raise ValueError(f"options do not fit SAELens's {config.__name__}: {err}") from None
    cfg.metadata.hook_name = hooks[0]
    if len(hooks) > 1:
        cfg.metadata.hook_name_out = hooks[1]
    sae = module(cfg, d_out=d_out) if architecture == "transcoder" else module(cfg)
    if flatten:  # the stream flattens heads itself
        sae.turn_off_forward_pass_hook_z_reshaping()
    return sae


def _transcoder_class(sae_lens):
    """SAELens trains SAEs only; a transcoder is its standard (L1) training SAE whose decoder
    writes ``d_out`` and whose loss compares with the target half of each sample."""

    class TrainingTranscoder(sae_lens.StandardTrainingSAE):
        def __init__(self, cfg, d_out):
            self.d_out = int(d_out)
            super().__init__(cfg)

        def initialize_weights(self):
            d_in, self.cfg.d_in = self.cfg.d_in, self.d_out  # the decoder side is d_out wide
            super().initialize_weights()
            self.cfg.d_in = d_in
            w_enc = torch.empty(d_in, self.cfg.d_sae, dtype=self.dtype, device=self.device)
            torch.nn.init.kaiming_uniform_(w_enc)
            self.W_enc = torch.nn.Parameter(w_enc * 0.1 / w_enc.norm(dim=0, keepdim=True))

        def training_forward_pass(self, step_input):
            x, target = step_input.sae_in.split([self.cfg.d_in, self.d_out], -1)
            out = super().training_forward_pass(
                type(step_input)(x, step_input.coefficients, step_input.dead_neuron_mask,
                                 step_input.n_training_steps, step_input.is_logging_step)
            )  # fmt: skip
            out.sae_in = target
            mse = self.mse_loss_fn(out.sae_out, target).sum(-1).mean()
            out.loss = out.loss - out.losses["mse_loss"] + mse
            out.losses["mse_loss"] = mse
            return out

    return TrainingTranscoder


def _inference(sae_lens, sae, architecture, hook, hook_out) -> SparseAutoencoder:
    """The trained SAE as SAELens's inference class (through its own saved format)."""
    if architecture == "transcoder":
        cfg = sae_lens.TranscoderConfig(
            d_in=sae.cfg.d_in, d_sae=sae.cfg.d_sae, d_out=sae.d_out, apply_b_dec_to_input=False
        )
        cfg.metadata.hook_name, cfg.metadata.hook_name_out = hook, hook_out
        out = sae_lens.Transcoder(cfg)
        out.load_state_dict(sae.state_dict())
        return SparseAutoencoder(out, hook=hook, hook_out=hook_out)
    state = sae.state_dict()
    sae.process_state_dict_for_saving_inference(state)
    config = json.loads(json.dumps(sae.cfg.get_inference_sae_cfg_dict(), default=str))
    out = sae_lens.SAE.from_dict(config)
    out.process_state_dict_for_loading(state)
    out.load_state_dict(state)
    return SparseAutoencoder.from_saelens(out, hook=hook)


def _log_steps(trainer: Any, saved: SAERun | None, every: int) -> None:
    """Log mse, l0 and explained variance every ``every`` steps (into the run's metrics)."""
    step = trainer.step

    def logged_step(batch: torch.Tensor) -> Any:
        out = step(batch)
        n = trainer.n_training_steps + 1  # steps done once this one is (fit counts it later)
        if saved is not None and (
            n % every == 0 or trainer.n_training_samples >= trainer.cfg.total_training_samples
        ):
            with torch.no_grad():
                target = out.sae_in.float()
                mse = (out.sae_out.float() - target).pow(2).sum(-1).mean()
                variance = (target - target.mean(0)).pow(2).sum(-1).mean()
                row = {name: float(v) for name, v in out.losses.items()}
                row["l0"] = float((out.feature_acts != 0).float().sum(-1).mean())
                row["explained_variance"] = float(1 - mse / variance)
            saved.log(n, row)
        return out

    trainer.step = logged_step
