"""A Hugging Face model folder is data: it cannot make explorer run its code or read elsewhere.

A folder whose ``config.json`` has an unknown ``model_type`` and an ``auto_map`` naming its
own ``configuration_evil.py`` (which writes a marker file when imported) is refused with a
sentence naming the ``auto_map`` and the file, before transformers is called: transformers
would otherwise ask "Do you wish to run the custom code? [y/N]" (``input()``, an input box in
Jupyter), and a "y" ran the file. Here ``input`` answers "y" and records that it was asked.
"""

from __future__ import annotations

import builtins
import json
import shutil

import hf_tiny
import pytest

import explorer
from explorer.models import _tl, hf

EVIL = """
import pathlib
pathlib.Path({marker!r}).write_text("ran")
from transformers import PretrainedConfig
class EvilConfig(PretrainedConfig):
    model_type = "evil"
"""


@pytest.fixture
def asked(monkeypatch):
    """Answer transformers' "run the custom code? [y/N]" with "y", recording each question."""
    questions: list[str] = []

    def answer(prompt=""):
        questions.append(prompt)
        return "y"

    monkeypatch.setattr(builtins, "input", answer)
    return questions


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    return hf_tiny.write_family("gpt2", tmp_path_factory.mktemp("hf") / "gpt2")


def evil_folder(tmp_path, with_weights: bool = True):
    folder = tmp_path / "evil-model"
    folder.mkdir()
    marker = tmp_path / "marker.txt"
    (folder / "configuration_evil.py").write_text(EVIL.format(marker=str(marker)))
    config = {
        "model_type": "evil",
        "architectures": ["EvilForCausalLM"],
        "auto_map": {"AutoConfig": "configuration_evil.EvilConfig"},
    }
    (folder / "config.json").write_text(json.dumps(config))
    if with_weights:
        import torch
        from safetensors.torch import save_file

        save_file({"w": torch.zeros(2)}, str(folder / "model.safetensors"))
    return folder, marker


@pytest.mark.parametrize("with_weights", [True, False])
def test_a_folder_with_an_auto_map_is_refused_before_transformers_can_ask(
    tmp_path, asked, with_weights
):
    folder, marker = evil_folder(tmp_path, with_weights)
    with pytest.raises(ValueError) as err:
        explorer.load(folder)
    message = str(err.value)
    assert '"auto_map"' in message and "configuration_evil.EvilConfig" in message
    assert "configuration_evil.py" in message and "never runs code" in message
    assert "config.json" in message
    assert not marker.exists(), "the folder's code ran"
    assert asked == [], "transformers asked whether to run the folder's code"


def test_the_nnsight_backend_refuses_it_too(tmp_path, asked):
    folder, marker = evil_folder(tmp_path)
    with pytest.raises(ValueError, match="auto_map"):
        explorer.load(folder, backend="nnsight")
    assert not marker.exists() and asked == []


def test_a_tokenizer_with_an_auto_map_is_refused(tmp_path, asked, gpt2_folder):
    folder = tmp_path / "model"
    shutil.copytree(gpt2_folder, folder)
    marker = tmp_path / "marker.txt"
    (folder / "tokenization_evil.py").write_text(EVIL.format(marker=str(marker)))
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["auto_map"] = {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}
    config["tokenizer_class"] = "EvilTokenizer"
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError) as err:
        explorer.load(folder)
    assert "tokenizer_config.json" in str(err.value)
    assert "tokenization_evil.py" in str(err.value)
    assert not marker.exists() and asked == []
    with pytest.raises(ValueError, match="auto_map"):
        hf.load_tokenizer(folder)


def test_code_of_another_repository_is_named(tmp_path, asked):
    folder, marker = evil_folder(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "someone/repo--configuration_evil.EvilConfig"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="configuration_evil.py of the repository someone/repo"):
        explorer.load(folder)
    assert asked == []


@pytest.mark.parametrize("named", ["../secret.json", "/etc/passwd", "sub/../../secret.json"])
def test_a_file_named_outside_the_folder_is_refused(tmp_path, gpt2_folder, named):
    folder = tmp_path / "model"
    shutil.copytree(gpt2_folder, folder)
    (tmp_path / "secret.json").write_text("{}")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["vocab_file"] = named
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError) as err:
        explorer.load(folder)
    assert "outside its folder" in str(err.value) and f"vocab_file = {named!r}" in str(err.value)


def test_files_named_inside_the_folder_still_load(tmp_path, gpt2_folder):
    folder = tmp_path / "model"
    shutil.copytree(gpt2_folder, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["tokenizer_file"] = "tokenizer.json"
    config["auto_map"] = {}  # empty: names no code
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    handle = explorer.load(folder)
    assert handle.to_tokens(hf_tiny.IOI).shape[-1] > 3


@pytest.mark.parametrize("name", ["microsoft/phi-2", "Qwen/Qwen-7B", "bigcode/santacoder"])
def test_hub_models_transformer_lens_trusts_with_code_are_refused(name):
    with pytest.raises(ValueError, match="never runs a repository's code"):
        _tl.refuse_remote_code(name)
    _tl.refuse_remote_code("gpt2")  # the others pass


def test_a_hugging_face_cache_snapshot_of_links_loads(tmp_path, gpt2_folder):
    """The cache's snapshot folder holds links to files in its blobs folder (outside it)."""
    blobs, snapshot = tmp_path / "blobs", tmp_path / "snapshots" / "abc123"
    blobs.mkdir()
    snapshot.mkdir(parents=True)
    for i, file in enumerate(sorted(gpt2_folder.iterdir())):
        shutil.copy(file, blobs / f"blob{i}")
        (snapshot / file.name).symlink_to(blobs / f"blob{i}")
    tokenizer_config = snapshot / "tokenizer_config.json"
    content = json.loads(tokenizer_config.read_text())
    content["tokenizer_file"] = "tokenizer.json"  # a link to a blob: named inside the folder
    tokenizer_config.unlink()
    tokenizer_config.write_text(json.dumps(content))
    handle = explorer.load(snapshot)
    assert handle.to_tokens(hf_tiny.IOI).shape[-1] > 3
