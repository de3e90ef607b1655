"""How the results of ``composition`` and ``neurons`` show themselves (kept apart from the
computing, as treescope does, so that those modules stay under 400 lines).

Each mixin gives one result class its ``to_dataframe``, short repr and HTML table on top
of ``explorer._display.Shown`` (the display layer every result inherits); it reads only
the result's own fields. It stays in analysis because it names analysis's units (``Head``).
"""

from __future__ import annotations

from typing import Any

from explorer._display import (
    MAX_ROWS,
    Shown,
    bars_svg,
    long_frame,
    num,
    pandas,
    shape,
    strongest,
)
from explorer.analysis.units import Head


def _unravel(index: int, sizes: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for size in reversed(sizes):
        out.append(index % size)
        index //= size
    return tuple(reversed(out))


class CompositionShown(Shown):
    """``CompositionScores``'s table, repr and HTML."""

    def _pairs(self, n: int) -> list[tuple[str, Head, Head, float]]:
        """The ``n`` highest-scoring ``(composition, head A, head B, score)`` over every composition."""
        _, n_layers, n_heads, _, _ = self.scores.shape
        out = []
        for i in strongest(self.scores, n, by_abs=False):
            k, la, ha, lb, hb = _unravel(i, tuple(self.scores.shape))
            out.append(
                (self.compositions[k], Head(la, ha), Head(lb, hb), float(self.scores.flatten()[i]))
            )
        return out

    def to_dataframe(self) -> Any:
        """One row per composing pair (``layer_a < layer_b``): ``composition``, ``head_a``,
        ``head_b`` (as text) and ``score``."""
        rows = []
        _, n_layers, n_heads, _, _ = self.scores.shape
        for k, composition in enumerate(self.compositions):
            for la in range(n_layers):
                for lb in range(la + 1, n_layers):
                    for ha in range(n_heads):
                        for hb in range(n_heads):
                            value = float(self.scores[k, la, ha, lb, hb])
                            rows.append((composition, str(Head(la, ha)), str(Head(lb, hb)), value))
        return pandas().DataFrame(rows, columns=["composition", "head_a", "head_b", "score"])

    def _summary(self) -> str:
        _, n_layers, n_heads, _, _ = self.scores.shape
        return (
            f"{'/'.join(self.compositions)} x {n_layers} layers x {n_heads} heads; random baseline "
            f"{num(self.baseline)} +- {num(self.baseline_std)}"
        )

    def _top(self) -> list[str]:
        return [
            f"{composition} {a} -> {b} {value:.3g}" for composition, a, b, value in self._pairs(3)
        ]

    def _table(self) -> tuple:
        rows = [
            (f"{a} -> {b}", composition, value)
            for composition, a, b, value in self._pairs(MAX_ROWS)
        ]
        note = f"random baseline {num(self.baseline)} +- {num(self.baseline_std)}"
        return "Composition: highest-scoring pairs", ("pair", "composition", "score"), rows, note


class CopyingShown(Shown):
    """``CopyingScores``'s table, repr and HTML."""

    def _head(self, flat: int) -> Head:
        return Head(flat // self.eigenvalue.shape[1], flat % self.eigenvalue.shape[1])

    def to_dataframe(self) -> Any:
        """One row per head: ``layer``, ``head``, ``eigenvalue`` and ``diagonal_top1``."""
        frame = long_frame(self.eigenvalue.double(), ("layer", "head"), "eigenvalue")
        frame["diagonal_top1"] = self.diagonal_top1.detach().double().flatten().numpy()
        return frame

    def _summary(self) -> str:
        return (
            f"{shape(self.eigenvalue, ('layer', 'head'))} over {self.n_tokens} tokens; "
            f"chance top-1 {num(self.chance_top1)}"
        )

    def _top(self) -> list[str]:
        return [
            f"{self._head(i)} eigenvalue {float(self.eigenvalue.flatten()[i]):.3g}"
            for i in strongest(self.eigenvalue, by_abs=False)
        ]

    def _table(self) -> tuple:
        rows = [
            (
                str(self._head(i)),
                float(self.eigenvalue.flatten()[i]),
                float(self.diagonal_top1.flatten()[i]),
            )
            for i in strongest(self.eigenvalue, MAX_ROWS, by_abs=False)
        ]
        note = f"most copying first; chance top-1 {num(self.chance_top1)}"
        return "OV copying", ("head", "eigenvalue", "diagonal top-1"), rows, note


class TopKShown(Shown):
    """``TopKExamples``'s table, repr and HTML."""

    def to_dataframe(self) -> Any:
        """One row per unit and rank: ``unit``, ``rank``, ``example``, ``position``, ``value``."""
        frame = long_frame(self.values.double(), ("unit", "rank"))
        frame.insert(2, "example", self.example.flatten().numpy())
        frame.insert(3, "position", self.position.flatten().numpy())
        return frame

    def _summary(self) -> str:
        n_units, k = self.values.shape
        which = "top" if self.largest else "bottom"
        dead = self.dead_units
        if dead:
            shown = ", ".join(map(str, dead[:6])) + (", ..." if len(dead) > 6 else "")
            note = f"; {len(dead)} dead (never > 0, top examples are ties): [{shown}]"
        else:
            note = "; no dead units" if self.largest else ""
        return f"{self.hook}: {n_units} units x {which} {k} over {self.n_examples:,} examples{note}"

    def _top(self) -> list[str]:
        return [
            f"unit {u} {float(self.values[u, 0]):.3g} (example {int(self.example[u, 0])})"
            for u in self.ranked()[:3]
        ]

    def _table(self) -> tuple:
        best = self.ranked()[:MAX_ROWS]
        rows = [
            (f"unit {u}", float(self.values[u, 0]), ", ".join(f"{e}@{p}" for e, p, _ in self.of(u)))
            for u in best
        ]
        note = f"{len(rows)} of {self.values.shape[0]} units, strongest first, dead ones left out"
        which = "Top" if self.largest else "Bottom"
        return f"{which} examples at {self.hook}", ("unit", "best", "examples@position"), rows, note


class HistogramShown(Shown):
    """``Histogram``'s table, repr and HTML."""

    def to_dataframe(self) -> Any:
        """One row per bin: ``bin``, its edges ``left`` and ``right``, and its ``count``;
        with labels one row per bin and ``class`` (the count of that class)."""
        if self.by_class is None:
            frame = long_frame(self.counts, ("bin",), "count")
        else:
            frame = long_frame(self.by_class.T, ("bin", "class"), "count")
        frame.insert(1, "left", self.edges[:-1].double().numpy()[frame["bin"]])
        frame.insert(2, "right", self.edges[1:].double().numpy()[frame["bin"]])
        return frame

    def _bin(self, i: int) -> str:
        return f"[{float(self.edges[i]):.3g}, {float(self.edges[i + 1]):.3g})"

    def _summary(self) -> str:
        return (
            f"unit {self.unit} at {self.hook}: {int(self.counts.sum())} values in "
            f"{len(self.counts)} bins over [{float(self.edges[0]):.3g}, {float(self.edges[-1]):.3g}]"
        )

    def _top(self) -> list[str]:
        return [f"{self._bin(i)} {int(self.counts[i])}" for i in strongest(self.counts, 2)]

    def _table(self) -> tuple:
        filled = self.counts.nonzero().flatten().tolist()
        rows = [(self._bin(i), int(self.counts[i])) for i in filled[:MAX_ROWS]]
        note = f"{len(rows)} of the {len(filled)} non-empty bins (of {len(self.counts)})"
        return f"unit {self.unit} at {self.hook}", ("bin", "count"), rows, note

    def _repr_html_(self) -> str:
        return super()._repr_html_() + bars_svg([int(c) for c in self.counts])


class WindowsShown(Shown):
    """``ExampleWindows``'s table, repr and HTML."""

    def to_dataframe(self) -> Any:
        """One row per window and token: ``window``, ``example``, ``start``, ``offset`` (from
        ``start``) and the unit's ``activation`` there."""
        frame = long_frame(self.acts.double(), ("window", "offset"), "activation")
        frame.insert(1, "example", self.examples.numpy()[frame["window"]])
        frame.insert(2, "start", [self.starts[w] for w in frame["window"]])
        return frame

    def _summary(self) -> str:
        return f"{len(self.starts)} windows of {self.acts.shape[1]} tokens"

    def _top(self) -> list[str]:
        peak = self.acts.amax(1) if self.acts.numel() else self.acts.sum(1)
        return [
            f"example {int(self.examples[i])} from {self.starts[i]} peak {float(peak[i]):.3g}"
            for i in strongest(peak, 3, by_abs=False)
        ]

    def _table(self) -> tuple:
        rows = [
            (f"example {int(self.examples[i])}", self.starts[i], float(self.acts[i].max()))
            for i in range(min(len(self.starts), MAX_ROWS))
        ]
        return "Example windows", ("example", "start", "peak"), rows, ""
