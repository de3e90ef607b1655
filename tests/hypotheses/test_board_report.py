"""The end-of-session HTML report: one self-contained file with the board's figures and
tables, every string escaped, the truth only on a revealed board."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser

import pytest
from sessions import board_of

from explorer.hypotheses import board_html, export_html

VOID = {"meta", "br", "img", "input", "link", "hr"}


class _Tags(HTMLParser):
    """Collects tags and attributes, and checks every opened element is closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.attributes: list[tuple[str, str, str | None]] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [(tag, k, v) for k, v in attrs]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(page: str) -> _Tags:
    tags = _Tags()
    tags.feed(page)
    tags.close()
    assert tags.stack == []  # well formed: every element closed
    return tags


def test_the_report_is_one_self_contained_page_with_the_boards_figures():
    page = board_html(board_of(records=3))
    tags = _parse(page)
    assert tags.tags.count("svg") == 4  # verdicts, budget, kappa, leaderboard
    assert "script" not in tags.tags and "link" not in tags.tags and "img" not in tags.tags
    fetching = [(t, k, v) for t, k, v in tags.attributes if k in ("src", "href")]
    assert fetching == []  # nothing fetched when it opens
    assert "url(" not in page and "@import" not in page
    # the figures draw the board's numbers: bo's two verdicts, cy's budget nearly spent
    assert "<title>bo: 1 supported</title>" in page and "<title>bo: 1 refuted</title>" in page
    assert ">1900 / 2000<" in page and ">0.50<" in page  # cy's passes, the unit's kappa
    text = " ".join(tags.text)
    assert "join code ROOM-42" in text and "3 records" in text
    for record in ("r0", "r1", "r2"):
        assert f"<td>{record}</td>" in page


def test_every_string_from_the_room_is_escaped():
    board = board_of(records=1)
    evil = "<img src=x onerror=alert(1)>"
    people = (dataclasses.replace(board.participants[0], name=evil),) + board.participants[1:]
    units = (dataclasses.replace(board.units[0], labels={evil: "</td><script>x</script>"}),)
    page = board_html(dataclasses.replace(board, title=evil, participants=people, units=units))
    tags = _parse(page)
    assert "img" not in tags.tags and "script" not in tags.tags
    assert page.count("&lt;img src=x onerror=alert(1)&gt;") >= 3  # title, table, figure


def test_the_truth_is_in_the_report_only_once_revealed():
    truth = {"bo": {"study": "planted.concept_neuron_model", "seed": 0, "units": ["neuron 0.3"]}}
    hidden = board_html(board_of(records=1, truth=truth))
    assert "seed 0: neuron 0.3" not in hidden and "The truth" not in hidden
    assert "the truth is hidden until the mentor reveals it" in hidden
    shown = board_html(board_of(records=1, truth=truth, revealed=True))
    assert "<h2>The truth</h2>" in shown
    assert "<td>bo</td><td>planted.concept_neuron_model, seed 0: neuron 0.3</td>" in shown


def test_export_writes_the_page(tmp_path):
    path = export_html(board_of(records=2), tmp_path / "room.html")
    assert path.read_text(encoding="utf-8") == board_html(board_of(records=2))
    with pytest.raises(ValueError, match=r"an HTML report goes to a \.html file, got '.*room.md'"):
        export_html(board_of(), tmp_path / "room.md")
