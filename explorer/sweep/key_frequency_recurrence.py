"""Which key frequencies recur across grokking runs (seeds and settings).

Each run's key frequencies are the fewest that carry ``mass`` of its embedding's squared
Fourier norm (``explorer.analysis.fourier.key_frequencies`` on the last checkpoint's
``embed`` rows of the ``p`` residues), as the tutorials and ``grokking_progress`` find them.
The result counts how many runs share each frequency, beside ``chance``: the share a
frequency would get if every run drew its key frequencies at random.

>>> r = KeyFrequencyRecurrence({"a": (3, 5), "b": (5, 1)}, {}, 5)
>>> r.counts, r.chance
({5: 2, 1: 1, 3: 1}, 0.4)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from explorer._display import Shown, fmt, pandas
from explorer.analysis.fourier import fourier_spectrum, key_frequencies
from explorer.models.protocol import Handle
from explorer.studies.grokking_fourier import modulus
from explorer.sweep.result import Sweep
from explorer.sweep.universality import _handle
from explorer.training.run import Run

__all__ = ["KeyFrequencyRecurrence", "key_frequency_recurrence"]


@dataclass(frozen=True, repr=False)
class KeyFrequencyRecurrence(Shown):
    """Each run's key frequencies (``keys[run]``, strongest first) and, per frequency, how
    many runs have it; ``chance`` is the share a frequency would get if each run drew its
    key frequencies at random (mean count / number of frequencies)."""

    keys: Mapping[str, tuple[int, ...]]
    settings: Mapping[str, Mapping[str, Any]]
    n_frequencies: int

    @property
    def counts(self) -> dict[int, int]:
        """Runs per frequency, most shared first."""
        found: dict[int, int] = {}
        for ks in self.keys.values():
            for k in ks:
                found[k] = found.get(k, 0) + 1
        return dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))

    @property
    def chance(self) -> float:
        sizes = [len(k) for k in self.keys.values()]
        return sum(sizes) / len(sizes) / self.n_frequencies if sizes else 0.0

    def to_dataframe(self) -> Any:
        """One row per run and key frequency: ``run``, its settings, ``frequency``,
        ``rank`` (0 strongest), ``runs_sharing``."""
        counts = self.counts
        rows = [
            {"run": r, **self.settings.get(r, {}), "frequency": k, "rank": i,
             "runs_sharing": counts[k]}
            for r, ks in self.keys.items()
            for i, k in enumerate(ks)
        ]  # fmt: skip
        return pandas().DataFrame(rows)

    def _summary(self) -> str:
        return f"{len(self.keys)} runs, chance share {self.chance:.2f}"

    def _top(self) -> list[str]:
        n = len(self.keys)
        return [f"{k} in {c}/{n}" for k, c in list(self.counts.items())[:5]]

    def _table(self) -> tuple:
        n = len(self.keys)
        rows = [(f"frequency {k}", c, fmt(c / n)) for k, c in self.counts.items()]
        note = f"{n} runs; a frequency drawn at random would be in {self.chance:.0%} of them"
        return "Key frequencies across runs", ("frequency", "runs", "share"), rows, note


def key_frequency_recurrence(
    sweep_or_runs: Sweep | Sequence[Handle | Run],
    *,
    mass: float = 0.8,
) -> KeyFrequencyRecurrence:
    """Which key frequencies (the fewest carrying ``mass`` of the embedding's squared Fourier
    norm) recur across grokking runs: a ``Sweep``'s finished runs (with their settings), or
    a list of runs (by folder name) or handles (by name; "#i" added to a repeated one)."""
    if isinstance(sweep_or_runs, Sweep):
        named = [(n, sweep_or_runs.run(n)) for n in sweep_or_runs.finished]
        changes = {p.name: dict(p.settings) for p in sweep_or_runs.points}
        settings = {n: changes[n] for n, _ in named}
    else:
        labels = [m.path.name if isinstance(m, Run) else m.name for m in sweep_or_runs]
        named = [
            (label if labels.count(label) == 1 else f"{label}#{i}", m)
            for i, (label, m) in enumerate(zip(labels, sweep_or_runs))
        ]
        settings = {}
    if not named:
        raise ValueError("key_frequency_recurrence needs at least one finished run")
    keys, sizes = {}, set()
    for name, source in named:
        model = _handle(source, f"run {name}")
        p = modulus(model)
        sizes.add(p)
        spectrum = fourier_spectrum(model.weight("embed")[:p])
        keys[name] = key_frequencies(spectrum, mass=mass).frequencies
    if len(sizes) > 1:
        raise ValueError(f"the runs are modulo different primes {sorted(sizes)}: compare one p")
    return KeyFrequencyRecurrence(keys, settings, (sizes.pop() - 1) // 2)
