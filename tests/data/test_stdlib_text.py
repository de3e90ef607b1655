"""The standard-library corpus: deterministic, split by file, hashed, and careful with folders."""

from __future__ import annotations

import platform
import sysconfig

import pytest

from explorer.data.stdlib_text import EXCLUDED_FOLDERS, held_out_file, stdlib_corpus


@pytest.fixture(scope="module")
def corpus():
    return stdlib_corpus()


def test_reading_twice_gives_the_same_corpus(corpus):
    again = stdlib_corpus()
    assert again.content_hash == corpus.content_hash
    assert [f.path for f in again.train] == [f.path for f in corpus.train]
    assert corpus.python_version == platform.python_version()
    assert corpus.root == sysconfig.get_paths()["stdlib"]


def test_the_split_is_by_file_and_about_one_in_ten(corpus):
    train, held = {f.path for f in corpus.train}, {f.path for f in corpus.held_out}
    assert train.isdisjoint(held)
    assert len(train) > 200  # the real library, not a stub
    assert 0.05 < len(held) / (len(train) + len(held)) < 0.2
    assert all(held_out_file(p) for p in held) and not any(held_out_file(p) for p in train)
    assert [f.path for f in corpus.train] == sorted(train)
    assert corpus.describe()["train_chars"] > 1_000_000


def test_tests_tools_and_installed_packages_are_left_out(corpus):
    for f in corpus.files:
        folders = f.path.split("/")[:-1]
        assert not set(folders) & EXCLUDED_FOLDERS, f.path
        assert f.path.endswith(".py")
    assert "site-packages" not in {p for f in corpus.files for p in f.path.split("/")}


def test_a_files_side_depends_on_its_path_only(tmp_path):
    for i in range(40):
        (tmp_path / f"m{i}.py").write_text(f"x = {i}\n")
    first = stdlib_corpus(tmp_path)
    (tmp_path / "added.py").write_text("y = 1\n")
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "t.py").write_text("z = 1\n")  # excluded: a test folder
    second = stdlib_corpus(tmp_path)
    held = lambda c: {f.path for f in c.held_out} - {"added.py"}
    assert held(first) == held(second)
    assert "test/t.py" not in {f.path for f in second.files}
    assert second.content_hash != first.content_hash


def test_the_hash_follows_the_content_and_non_utf8_files_are_skipped(tmp_path):
    for i in range(40):
        (tmp_path / f"m{i}.py").write_text(f"x = {i}\n")
    (tmp_path / "latin.py").write_bytes(b"s = '\xe9'\n")
    before = stdlib_corpus(tmp_path)
    assert before.skipped == ("latin.py",)
    (tmp_path / "m3.py").write_text("x = 'changed'\n")
    assert stdlib_corpus(tmp_path).content_hash != before.content_hash


def test_bad_arguments_are_named(corpus, tmp_path):
    with pytest.raises(FileNotFoundError, match="no standard-library folder"):
        stdlib_corpus(tmp_path / "missing")
    with pytest.raises(ValueError, match="held_out_every must be >= 2"):
        held_out_file("a.py", every=1)
    (tmp_path / "one.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match="needs both"):
        stdlib_corpus(tmp_path)
    with pytest.raises(ValueError, match="max_files"):
        stdlib_corpus(tmp_path, max_files=0)
    with pytest.raises(ValueError, match="unknown split"):
        corpus.split("test")


def test_docstring_examples():
    import doctest

    import explorer.data.bpe
    import explorer.data.stdlib_text

    for module in (explorer.data.stdlib_text, explorer.data.bpe):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
