"""What a mentor hands a participant: a model named by a study on an allow-list, a seed and
JSON parameters. A hand-out is data, never code: ``STUDIES`` maps each allowed name to the
function that builds the model and to the parameters it takes (with their types), and
nothing read from the store is executed or unpickled. The truth of a hand-out (the planted
neuron or head, the auditing game's trigger) is computed from the same data by the mentor's
kernel and kept hidden in the store until the reveal.

>>> h = Handout("planted.concept_neuron_model", seed=3)
>>> Handout.from_json(h.to_json()) == h
True
>>> truth_of(h)
{'study': 'planted.concept_neuron_model', 'seed': 3, 'units': ['neuron 0.3']}
>>> Handout("os.system", seed=1)
Traceback (most recent call last):
...
ValueError: unknown study 'os.system' for a hand-out: one of 'auditing.plant', 'planted.concept_neuron_model', 'planted.previous_token_model'
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from explorer.hypotheses import planted
from explorer.models.handle import ModelHandle
from explorer.studies import auditing

__all__ = ["STUDIES", "Handout"]


def _plant(seed: int, **options: Any) -> ModelHandle:
    p = auditing.plant(seed, **options)
    return p.model


def _plant_truth(seed: int, **options: Any) -> dict[str, Any]:
    if options.get("clean", False):
        return {"clean": True, "trigger": None, "units": []}
    trigger = auditing.random_trigger(seed, options.get("kind"))  # what plant(seed) plants
    return {"clean": False, "trigger": trigger.to_dict(), "units": []}


def _units(*units: str) -> Callable[..., dict[str, Any]]:
    return lambda seed, **options: {"units": list(units)}


# name -> (builds the model from seed and options, its truth, {option: allowed types})
STUDIES: dict[str, tuple[Callable[..., ModelHandle], Callable[..., dict[str, Any]], dict]] = {
    "auditing.plant": (
        _plant,
        _plant_truth,
        {
            "clean": (bool,),
            "kind": (str, type(None)),
            "steps": (int,),
            "poison": (float, int),
            "arch": (str,),
        },
    ),
    "planted.concept_neuron_model": (
        lambda seed, **options: planted.concept_neuron_model(seed=seed, **options),
        _units("neuron {}.{}".format(*planted.CONCEPT_NEURON)),
        {"n_features": (int,), "width": (int,)},
    ),
    "planted.previous_token_model": (
        lambda seed, **options: planted.previous_token_model(seed=seed, **options),
        _units("head {}.{}".format(*planted.PREVIOUS_TOKEN_HEAD)),
        {"strength": (float, int)},
    ),
}


@dataclass(frozen=True)
class Handout:
    """A model for one participant: ``study`` (a name in ``STUDIES``), its ``seed`` and
    ``options`` (JSON values, only the parameters that study takes)."""

    study: str
    seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.study not in STUDIES:
            allowed = ", ".join(repr(s) for s in sorted(STUDIES))
            raise ValueError(f"unknown study {self.study!r} for a hand-out: one of {allowed}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"a hand-out's seed must be an int >= 0, got {self.seed!r}")
        if not isinstance(self.options, Mapping):
            raise ValueError(f"a hand-out's options must be a dict, got {self.options!r}")
        allowed = STUDIES[self.study][2]
        for name, value in self.options.items():
            if name not in allowed:
                raise ValueError(
                    f"{self.study} takes no option {name!r} in a hand-out: one of "
                    f"{', '.join(sorted(allowed)) or 'none'}"
                )
            if isinstance(value, bool) and bool not in allowed[name]:
                value = None  # True is an int to Python, not to a hand-out
            if not isinstance(value, allowed[name]):
                kinds = " or ".join(t.__name__ for t in allowed[name])
                raise ValueError(f"{self.study} option {name!r} must be {kinds}, got {value!r}")
        object.__setattr__(self, "options", dict(self.options))

    def __hash__(self) -> int:
        return hash((self.study, self.seed, json.dumps(dict(self.options), sort_keys=True)))

    def to_dict(self) -> dict[str, Any]:
        return {"study": self.study, "seed": self.seed, "options": dict(self.options)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> Handout:
        """Read ``to_dict()`` back; anything else raises a ``ValueError`` saying what."""
        if not isinstance(data, dict) or set(data) - {"study", "seed", "options"}:
            raise ValueError(f"a hand-out is {{'study', 'seed', 'options'}}, got {data!r}")
        return cls(data.get("study", ""), data.get("seed", 0), data.get("options", {}))

    @classmethod
    def from_json(cls, text: str) -> Handout:
        return cls.from_dict(json.loads(text))


def open_handout(handout: Handout) -> ModelHandle:
    """Build the hand-out's model (seeded: everyone given the same hand-out gets the same
    weights)."""
    build = STUDIES[handout.study][0]
    return build(handout.seed, **handout.options)


def truth_of(handout: Handout) -> dict[str, Any]:
    """What the hand-out's model hides (JSON): ``units`` planted (``neuron 0.3``), or the
    auditing game's trigger (None when the model is clean)."""
    truth = STUDIES[handout.study][1](handout.seed, **handout.options)
    return {"study": handout.study, "seed": handout.seed, **truth}
