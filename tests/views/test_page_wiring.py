"""The page and the kernel are wired by anywidget's own machinery, with nothing to keep in
step by hand: requests go through its command channel (``invoke`` in the JS, a
``@page_request`` / ``anywidget.experimental.command`` method in Python), and a view's JS
redraws on any synced trait change instead of a hand-kept list of trait names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import explorer.views
from explorer.views._base import ExplorerWidget

VIEWS = Path(explorer.views.__file__).parent
WIDGETS = sorted(
    (getattr(explorer.views, name) for name in explorer.views.__all__),
    key=lambda c: getattr(c, "__name__", ""),
)
WIDGETS = [c for c in WIDGETS if isinstance(c, type) and issubclass(c, ExplorerWidget)]
SHARED = ("_common.js", "_controls.js", "_link.js")
#: the relink after anywidget's start-up window ran out repairs anywidget's own channel, so
#: its one message cannot go through it (tested below)
LINK_JS = (VIEWS / "_link.js").read_text(encoding="utf-8")


def _own_js(cls: type) -> str:
    """The widget's module without the shared helpers prepended to it."""
    shared = "\n".join((VIEWS / name).read_text(encoding="utf-8") for name in SHARED)
    return cls._esm.replace(shared, "")


def test_every_view_is_checked():
    assert len(WIDGETS) == 15


@pytest.mark.parametrize("cls", WIDGETS, ids=lambda c: c.__name__)
def test_every_request_the_page_sends_is_a_command_of_its_class(cls):
    js = str(cls._esm).replace(LINK_JS, "")
    sent = set(re.findall(r'exRequest\(model, "([A-Za-z_]+)"', js))
    if "exSet(model" in js:
        sent.add("_page_set")
    commands = set(cls._anywidget_commands)
    assert sent <= commands, f"{cls.__name__}'s page sends {sorted(sent - commands)}"
    assert "exConnect(model, experimental)" in _own_js(cls)  # the invoke anywidget hands over
    assert "model.send(" not in js and '"action"' not in js  # no hand-rolled messages


def test_the_relink_sends_one_message_of_its_own_which_the_kernel_answers():
    assert re.findall(r"model\.send\((.*?)\)", LINK_JS) == ['{ type: "ex-resync" }']
    assert all(LINK_JS in cls._esm for cls in WIDGETS)


@pytest.mark.parametrize("cls", WIDGETS, ids=lambda c: c.__name__)
def test_no_view_hand_lists_the_traits_it_watches(cls):
    own = _own_js(cls)
    assert re.findall(r'"change:', own) == [], f"{cls.__name__} listens to named traits"
    assert "const names = [" not in own


def test_the_shared_helpers_watch_only_traits_of_the_base_class():
    """The banner, the pending line and the budget meter each show one base-class trait."""
    base = set(ExplorerWidget.class_trait_names(sync=True))
    watched = set()
    for name in SHARED:
        watched |= set(re.findall(r'"change:([a-z_]+)"', (VIEWS / name).read_text()))
    assert watched == {"error", "busy", "last_run", "spent"}
    assert watched <= base
