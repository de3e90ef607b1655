"""The API reference pages of ``make docs``: what each page documents, and how a docstring reads.

- Each object is documented once, on the page of the package it lives in: packages are
  read bottom-up (``data`` before ``models`` ... before the facade), and a name a package
  re-exports from below is listed as a link to where it is documented, not again.
  ``api_page`` writes the Markdown of one page (``::: module`` blocks with their members).
- ``ApiDocstrings`` (a griffe extension, named in the mkdocstrings options) rewrites each
  docstring before it is rendered: runs of ``>>>`` examples become ``pycon`` code blocks
  (Markdown would read ``>>>`` as nested quotes), and the summary line comes first, with a
  class's public bases after it (the theme puts "Bases: ..." above the docstring, and a
  result's base is the private display mixin) and developer notes (``Size:`` paragraphs)
  at the end.
"""

from __future__ import annotations

import importlib
import inspect
import re
from types import ModuleType
from typing import Any

import griffe

NOTE = re.compile(r"^Size:")  # a paragraph for whoever edits the module, not for its users


def doctest_fences(text: str) -> str:
    """Each run of ``>>>`` lines, with the output under them (to the next blank line),
    fenced as a ``pycon`` code block. Lines already inside a fence, or indented (an
    ``Examples:`` section, an argument's text), are left alone."""
    out: list[str] = []
    fenced = in_example = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and not in_example and line.startswith(">>>"):
            out.append("```pycon")
            in_example = True
        elif in_example and not line.strip():
            out.append("```")
            in_example = False
        out.append(line)
    if in_example:
        out.append("```")
    return "\n".join(out)


def summary_first(text: str, bases: list[str] = ()) -> str:  # type: ignore[assignment]
    """The summary paragraph, then a line naming the public ``bases``, then the rest with
    developer notes (``Size:`` paragraphs) moved to the end."""
    paragraphs = re.split(r"\n\s*\n", text.strip()) if text.strip() else []
    if not paragraphs:
        return text
    summary, rest = paragraphs[0], paragraphs[1:]
    notes = [p for p in rest if NOTE.match(p)]
    body = [p for p in rest if not NOTE.match(p)]
    based = [f"Bases: {', '.join(f'`{b}`' for b in bases)}"] if bases else []
    return "\n\n".join([summary, *based, *body, *notes])


def _public(path: str) -> bool:
    return not any(part.startswith("_") for part in path.split("."))


class ApiDocstrings(griffe.Extension):
    """Rewrites every docstring as ``doctest_fences`` and ``summary_first`` say."""

    def __init__(self) -> None:
        super().__init__()
        self._done: set[str] = set()

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self.on_object(obj=pkg)  # the top package gets no on_object of its own

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.is_alias or obj.path in self._done:
            return
        self._done.add(obj.path)
        bases = []
        if obj.is_class:
            bases = [str(b) for b in obj.bases if _public(getattr(b, "canonical_path", str(b)))]
        if obj.docstring is None:
            return
        obj.docstring.value = summary_first(doctest_fences(obj.docstring.value), bases)


def _key(obj: Any, home: str, name: str) -> str:
    """What makes two exported names the same object: a module's name, a class's or
    function's defining module and qualified name, else the exporting module and name."""
    if inspect.ismodule(obj):
        return obj.__name__
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return f"{obj.__module__}.{obj.__qualname__}"
    if isinstance(obj, (int, float, str, bytes, bool, type(None))):
        return f"{home}.{name}"  # equal values may be different constants
    return f"object {id(obj)}"  # one instance re-exported (a default setting, a table)


def _exported(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [
        n
        for n, o in vars(module).items()
        if not n.startswith("_")
        and (inspect.isclass(o) or inspect.isfunction(o))
        and o.__module__ == module.__name__
    ]


Block = tuple[str, list[str]]  # (module path, the members it documents)


def page_blocks(packages: list[str], order: list[str]) -> dict[str, tuple[list[Block], dict]]:
    """For each package: its ``::: module`` blocks (the package itself, then each exported
    submodule) with the members each documents, and ``{name: where it is documented}`` for
    names exported here but documented on another page. ``order`` is the order pages claim
    their names in (bottom layer first), so an object is documented at its home."""
    seen: dict[str, str] = {}  # key -> the dotted path it is documented at
    pages: dict[str, tuple[list[Block], dict]] = {}
    for package in order:
        if package not in packages:
            continue
        module = importlib.import_module(package)
        blocks: list[Block] = []
        elsewhere: dict[str, str] = {}
        own: list[str] = []
        subs: list[ModuleType] = []
        for name in _exported(module):
            obj = getattr(module, name)
            key = _key(obj, package, name)
            if key in seen:
                elsewhere[name] = seen[key]
            elif inspect.ismodule(obj) and obj.__name__.startswith(package + "."):
                seen[key] = obj.__name__
                subs.append(obj)
            else:
                seen[key] = f"{package}.{name}"
                own.append(name)
        blocks.append((package, own))
        for sub in subs:
            members = []
            for name in _exported(sub):
                key = _key(getattr(sub, name), sub.__name__, name)
                if key in seen:
                    continue
                seen[key] = f"{sub.__name__}.{name}"
                members.append(name)
            blocks.append((sub.__name__, members))
        pages[package] = (blocks, elsewhere)
    return {p: pages[p] for p in packages}


def api_page(package: str, what: str, blocks: list[Block], elsewhere: dict[str, str]) -> str:
    """The Markdown of one API page: its title and line, links to the names documented on
    other pages, then one ``:::`` block per module with exactly its members."""
    lines = [f"# `{package}`", "", what, ""]
    if elsewhere:
        links = ", ".join(f"[`{n}`][{path}]" for n, path in sorted(elsewhere.items()))
        lines += [f"Also exported here, documented where they live: {links}.", ""]
    for i, (module, members) in enumerate(blocks):
        lines += [
            f"::: {module}",
            "    options:",
            f"      show_root_heading: {'false' if i == 0 else 'true'}",
            "      show_submodules: false",
            f"      members: [{', '.join(members)}]",
            "",
        ]
    return "\n".join(lines)
