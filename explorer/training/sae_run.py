"""``SAERun``: the folder an SAE's training lives in (the run format of ``training.run``).

``manifest.json`` (format ``"explorer-sae-run"``) says what is trained (hooks, architecture,
settings), its status and its published checkpoints; ``metrics.jsonl`` is ``Run``'s metrics
log; ``checkpoints/step_NNNNNN/`` holds SAELens's ``cfg.json`` + ``sae_weights.safetensors``,
explorer's optimizer files and the trainer's state (``trainer.json`` + ``trainer.safetensors``:
counters, schedules, firing statistics, the activation scale); ``sae/`` the finished SAE.
A checkpoint is written into a staging folder, renamed into place, and published by
replacing the manifest; anything the manifest does not list is ignored and removed on
resume, as are metric rows after the last published step. Only JSON and safetensors.

>>> import tempfile
>>> run = SAERun.open_or_create(tempfile.mkdtemp() + "/sae-run", {"architecture": "topk"})
>>> run.status, run.steps
('training', ())
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from explorer._atomic import fsync_dir, fsync_file, remove_tree, replace, write_atomic
from explorer._inside import inside
from explorer.training.curves import _MetricsLog
from explorer.training.optim_state import load_optimizer_state, optimizer_files

__all__ = ["SAERun"]

FORMAT = "explorer-sae-run"
MANIFEST = "manifest.json"
CHECKPOINTS = "checkpoints"
STAGING = ".staging"
TRAINER = "trainer.json"
TRAINER_TENSORS = "trainer.safetensors"
SAE = "sae"


class SAERun(_MetricsLog):
    """An SAE training run on disk; ``train_sae(run=path)`` makes and resumes it."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self._manifest = manifest

    @classmethod
    def open(cls, path: str | Path) -> SAERun:
        path = Path(path)
        file = path / MANIFEST
        try:
            manifest = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{str(path)!r} is not an SAE run (its {MANIFEST}: {err})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError(
                f"{str(path)!r} is not an SAE run: its {MANIFEST} is not format {FORMAT!r}"
            )
        return cls(path, manifest)

    @classmethod
    def open_or_create(cls, path: str | Path, settings: dict[str, Any]) -> SAERun:
        """The run at ``path`` if there is one trained with the same ``settings`` (else a
        sentence naming what differs), or a new one."""
        path = Path(path)
        if (path / MANIFEST).is_file():
            run = cls.open(path)
            old = run._manifest["settings"]
            new = json.loads(json.dumps(settings))
            differ = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
            if differ:
                shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in differ[:4])
                raise ValueError(
                    f"the SAE run in {str(path)!r} was trained with other settings ({shown}): "
                    "resume it with the same ones, or train into a new folder"
                )
            return run
        if path.exists() and any(path.iterdir()):
            raise ValueError(
                f"{str(path)!r} exists and is not an SAE run: give an empty or new folder"
            )
        path.mkdir(parents=True, exist_ok=True)
        run = cls(
            path,
            {
                "format": FORMAT,
                "version": 1,
                "settings": settings,
                "status": "training",
                "checkpoints": [],
            },
        )
        run._write()
        return run

    # ---------------------------------------------------------------- reading
    @property
    def status(self) -> str:
        return str(self._manifest["status"])

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self._manifest["settings"])

    @property
    def steps(self) -> tuple[int, ...]:
        return tuple(int(c["step"]) for c in self._manifest["checkpoints"])

    def checkpoint_folder(self, step: int) -> Path:
        return inside(
            self.path,
            CHECKPOINTS,
            f"step_{int(step):06d}",
            what="checkpoint folder",
            owner=f"SAE run {str(self.path)!r}",
        )

    def sae_folder(self) -> Path:
        return inside(self.path, SAE, what="SAE folder", owner=f"SAE run {str(self.path)!r}")

    def __repr__(self) -> str:
        return f"SAERun({self.path.name}, {self.status}, checkpoints at {list(self.steps)})"

    # ---------------------------------------------------------------- writing
    def _write(self) -> None:
        write_atomic(self.path / MANIFEST, json.dumps(self._manifest, indent=1).encode())

    def save_checkpoint(self, trainer: Any) -> None:
        """Publish the trainer's state after its current step."""
        step = int(trainer.n_training_steps) + 1  # fit() counts this step after the checkpoint
        staging = inside(self.path, STAGING, what="staging folder")
        if staging.exists():
            remove_tree(staging, self.path)
        staging.mkdir()
        trainer.sae.save_model(staging)
        for name, data in optimizer_files(trainer.optimizer, step).items():
            (staging / name).write_bytes(data)
        scale = trainer.activation_scaler.scaling_factor
        state = {
            "step": step,
            "n_training_samples": int(trainer.n_training_samples),
            "n_frac_active_samples": int(trainer.n_frac_active_samples),
            "started_fine_tuning": bool(trainer.started_fine_tuning),
            "lr_scheduler": _plain(trainer.lr_scheduler.state_dict()),
            "coefficient_schedulers": {
                k: _plain(s.state_dict()) for k, s in trainer.coefficient_schedulers.items()
            },
            "scaling_factor": None if scale is None else float(scale),
        }
        (staging / TRAINER).write_text(json.dumps(state, indent=1))
        save_file(
            {
                "act_freq_scores": trainer.act_freq_scores.detach().cpu().contiguous(),
                "n_forward_passes_since_fired": trainer.n_forward_passes_since_fired.detach()
                .cpu()
                .contiguous(),
            },
            str(staging / TRAINER_TENSORS),
        )
        for file in staging.iterdir():
            fsync_file(file)
        fsync_dir(staging)
        (self.path / CHECKPOINTS).mkdir(exist_ok=True)
        final = self.checkpoint_folder(step)
        if final.exists():
            remove_tree(final, self.path / CHECKPOINTS)
        replace(staging, final)
        self._manifest["checkpoints"] = [
            c for c in self._manifest["checkpoints"] if c["step"] != step
        ] + [{"step": step, "samples": int(trainer.n_training_samples)}]
        self._write()

    def resume_into(self, sae: Any) -> int | None:
        """Drop what was never published; load the last checkpoint's weights into ``sae``;
        its step (None for a fresh run)."""
        listed = {f"step_{s:06d}" for s in self.steps}
        for folder in (
            (self.path / CHECKPOINTS).glob("*") if (self.path / CHECKPOINTS).is_dir() else ()
        ):
            if folder.name not in listed:
                remove_tree(folder, self.path / CHECKPOINTS)
        staging = self.path / STAGING
        if staging.exists():
            remove_tree(staging, self.path)
        last = max(self.steps, default=None)
        rows = [r for r in self.rows() if last is not None and r["step"] <= last]
        write_atomic(
            self.path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode()
        )
        if last is None:
            return None
        state = load_file(str(self.checkpoint_folder(last) / "sae_weights.safetensors"))
        sae.load_state_dict(state)
        return last

    def load_trainer(self, trainer: Any, step: int) -> None:
        """Put the trainer's optimizer, schedules and statistics back as they were at ``step``."""
        folder = self.checkpoint_folder(step)
        load_optimizer_state(trainer.optimizer, folder, step)
        state = json.loads((folder / TRAINER).read_text(encoding="utf-8"))
        tensors = load_file(str(folder / TRAINER_TENSORS))
        trainer.lr_scheduler.load_state_dict(state["lr_scheduler"])
        for name, sched in state["coefficient_schedulers"].items():
            trainer.coefficient_schedulers[name].load_state_dict(sched)
        trainer.n_training_samples = int(state["n_training_samples"])
        trainer.n_training_steps = int(state["step"])
        trainer.n_frac_active_samples = int(state["n_frac_active_samples"])
        trainer.started_fine_tuning = bool(state["started_fine_tuning"])
        trainer.act_freq_scores = tensors["act_freq_scores"].to(trainer.cfg.device)
        trainer.n_forward_passes_since_fired = tensors["n_forward_passes_since_fired"].to(
            trainer.cfg.device
        )
        trainer.activation_scaler.scaling_factor = state["scaling_factor"]

    def finish(self, sae: Any) -> None:
        """Save the trained SAE (SAELens's format) and mark the run complete."""
        folder = self.sae_folder()
        if folder.exists():
            remove_tree(folder, self.path)
        sae.save(folder)
        self._manifest["status"] = "complete"
        self._write()


def _plain(value: Any) -> Any:
    """A scheduler's state as JSON (tensors and tuples as lists)."""
    return json.loads(
        json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else list(v))
    )
