"""Equations on the documentation site, offline: a mkdocs hook (``hooks:`` in the site config
that ``scripts/build_docs.py`` writes) that turns ``$$...$$`` (display) and ``$...$`` (inline)
LaTeX in each rendered page into MathML at build time (``latex2mathml``). Chromium and Firefox
draw MathML natively, so the site needs no MathJax or KaTeX from a CDN.

Code is left alone: nothing inside ``<pre>``, ``<code>``, ``<script>``, ``<style>`` or
``<textarea>`` is converted, so ``$HF_HOME`` in a code span or a shell example stays as written.
An equation latex2mathml cannot read stops the build with an error naming the page and the
equation.
"""

from __future__ import annotations

import html
import re

from latex2mathml.converter import convert

# Regions whose text is code, never math (non-greedy: a <code> inside a <pre> ends with it).
_PROTECTED = re.compile(
    r"<(pre|code|script|style|textarea)\b[^>]*>.*?</\1\s*>", re.DOTALL | re.IGNORECASE
)
_DISPLAY = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$", re.DOTALL)
# $x$: no space just inside the dollars and no digit or letter just outside, so "costs $5
# and $10" and "$HOME/$USER" are prose, not math.
_INLINE = re.compile(r"(?<![\\$\w])\$(?![\s$])([^$\n]+?)(?<![\s\\])\$(?![\w$])")


class MathError(ValueError):
    """An equation that latex2mathml cannot convert."""


def _mathml(tex: str, display: str, where: str) -> str:
    source = html.unescape(tex).strip()
    try:
        return convert(source, display=display)
    except Exception as exc:  # latex2mathml raises several exception types
        raise MathError(
            f"{where}: cannot convert the equation {source!r} to MathML ({exc}); "
            "use LaTeX that latex2mathml supports, or escape a literal dollar as \\$"
        ) from exc


def _convert_text(text: str, where: str) -> str:
    text = _DISPLAY.sub(lambda m: _mathml(m.group(1), "block", where), text)
    return _INLINE.sub(lambda m: _mathml(m.group(1), "inline", where), text)


def render_math(page_html: str, where: str = "page") -> str:
    """``page_html`` with its ``$$...$$`` and ``$...$`` equations as ``<math>`` elements."""
    out, start = [], 0
    for match in _PROTECTED.finditer(page_html):
        out.append(_convert_text(page_html[start : match.start()], where))
        out.append(match.group(0))
        start = match.end()
    out.append(_convert_text(page_html[start:], where))
    return "".join(out)


def on_page_content(html: str, page, **kwargs) -> str:
    """mkdocs hook: runs on each page's HTML body, notebooks (mkdocs-jupyter) included."""
    return render_math(html, where=page.file.src_uri)
