"""What a Hugging Face model folder may ask of explorer, checked before transformers reads it.

A folder is data: its JSON files may name classes transformers ships and files inside the
folder, nothing else. ``check_folder(path)`` refuses, with a sentence naming the file and
the key, a folder whose ``config.json`` or tokenizer files

- carry an ``auto_map`` (or ``custom_pipelines``): classes defined by Python files shipped
  with the folder (``configuration_evil.py``) or with another repository
  (``"org/repo--module.Class"``). transformers would import and run that code once
  ``trust_remote_code`` is on, and when it is left unset it *asks* ("Do you wish to run the
  custom code? [y/N]", an input box in Jupyter). explorer passes ``trust_remote_code=False``
  everywhere and refuses the folder before transformers is called, so it never asks;
- name a file (a key ending in ``_file``, ``_files``, ``_dir`` or ``_folder``: ``vocab_file``,
  ``merges_file``, ``tokenizer_file`` ...) outside the folder: an absolute path or one that
  climbs out with ``..``. (Links inside the folder are the folder's own business: the
  Hugging Face cache's snapshot folders are made of links to its blobs.)

>>> import json, tempfile
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "config.json").write_text(json.dumps(
...     {"model_type": "evil", "auto_map": {"AutoConfig": "configuration_evil.EvilConfig"}}))
>>> check_folder(folder)  # doctest: +ELLIPSIS
Traceback (most recent call last):
ValueError: '...config.json' has an "auto_map" (AutoConfig: configuration_evil.EvilConfig): ...
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["CODE_KEYS", "JSON_FILES", "check_folder"]

#: keys that make transformers import classes from Python files instead of its own
CODE_KEYS = ("auto_map", "custom_pipelines")
#: the folder's JSON files transformers reads when explorer loads a model and its tokenizer
JSON_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "adapter_config.json",
)
_PATH_SUFFIXES = ("_file", "_files", "_dir", "_folder")


def check_folder(path: Path) -> None:
    """Raise ``ValueError`` if the folder's JSON files ask for code or for files outside it."""
    root = Path(path).resolve()
    for name in JSON_FILES:
        file = Path(path) / name
        if not file.is_file():
            continue
        try:
            content = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ValueError(f"{str(file)!r} is not readable JSON ({err})") from None
        for key, value in _items(content):
            if key in CODE_KEYS and value:
                raise ValueError(_code_refused(file, key, value))
            if key.endswith(_PATH_SUFFIXES):
                for named in _strings(value):
                    # by name, links not followed: the Hugging Face cache's snapshot folders
                    # hold links to its blobs folder, and they are the user's own download
                    target = Path(os.path.normpath(root / named))
                    if not target.is_relative_to(root):
                        raise ValueError(
                            f"{str(file)!r} names a file outside its folder: {key} = {named!r} "
                            f"(that is {str(target)!r}). explorer reads only files inside "
                            f"{str(root)!r}: make it a file name inside the folder or remove "
                            "the key"
                        )


def _code_refused(file: Path, key: str, value: Any) -> str:
    entries = value.items() if isinstance(value, dict) else [("", value)]
    shown, modules = [], []
    for cls, ref in entries:
        for text in _strings(ref):
            shown.append(f"{cls}: {text}" if cls else text)
            repo, _, dotted = text.rpartition("--")
            module = dotted.rpartition(".")[0] or dotted
            modules.append(
                f"{module.replace('.', '/')}.py" + (f" of the repository {repo}" if repo else "")
            )
    listed = "; ".join(shown) or repr(value)
    files = ", ".join(dict.fromkeys(modules)) or "Python files"
    return (
        f"{str(file)!r} has an {json.dumps(key)} ({listed}): it asks transformers to import "
        f"and run {files} shipped with the model instead of its own classes. explorer never "
        "runs code that comes with a model folder (trust_remote_code is always off), so it "
        "does not open this folder. Use a folder whose config names an architecture "
        "transformers ships (save_pretrained of a model transformers defines writes one), "
        "or, where you trust that code, load the model and its tokenizer yourself and pass "
        "both: explorer.load(model, tokenizer=tokenizer)"
    )


def _items(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) of nested dicts and lists."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield str(key), inner
            yield from _items(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _items(inner)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []
