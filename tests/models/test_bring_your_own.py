"""``explorer.load(file, module=..., name=..., key_map=...)``: a bare safetensors file into a
user's module, with key prefixes renamed; the README's "Bring your own model" runs as written."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import explorer
from explorer.models import remap_keys

README = Path(__file__).resolve().parents[2] / "README.md"


def _flat() -> nn.Sequential:
    return nn.Sequential(nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10))


def _flattening() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(3)
    net = _flat()
    file = tmp_path_factory.mktemp("byo") / "mlp.safetensors"
    save_file(net.state_dict(), file)
    return file, net


def test_the_readme_section_runs_and_prints_what_it_says():
    section = README.read_text().split("## Bring your own model", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    said = [line.split("# ", 1)[1].split(":")[0] for line in code.splitlines() if "print(" in line]
    ns: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), ns)
    assert out.getvalue().splitlines() == said
    model, twin = ns["model"], ns["twin"]
    assert model.name == "suspect" and twin.name == "twin"
    assert torch.equal(twin.model.module[1].weight, ns["saved"][0].weight)


def test_a_bare_file_loads_into_the_module_with_its_name(saved):
    file, net = saved
    model = explorer.load(file, module=_flat(), name="mine")
    assert model.name == "mine" and model.input_shape == (784,)
    x = torch.rand(5, 784)
    with torch.no_grad():
        assert torch.equal(model(x), net(x))


def test_key_map_moves_prefixes_into_a_flattening_module(saved):
    file, net = saved
    model = explorer.load(file, module=_flattening(), key_map={"0.": "1.", "2.": "3."})
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x), net(x.flatten(1)))


def test_key_map_errors_list_what_did_not_match(saved):
    file, _ = saved
    with pytest.raises(ValueError, match=r"missing \['module.1.bias', 'module.1.weight'"):
        explorer.load(file, module=_flattening())  # no key_map: the layouts differ
    with pytest.raises(ValueError, match=r"prefixes \['7.'\] match no key of the file"):
        explorer.load(file, module=_flattening(), key_map={"0.": "1.", "2.": "3.", "7.": "9."})
    with pytest.raises(
        ValueError,
        match=r"missing \['3.bias', '3.weight'\], unexpected "
        r"\['2.bias', '2.weight'\]",
    ):
        explorer.load(file, module=_flattening(), key_map={"0.": "1."})
    with pytest.raises(ValueError, match="sends two keys of the file to '1.weight'"):
        remap_keys({"0.weight": 1, "1.weight": 2}, {"0.": "1."})
    with pytest.raises(TypeError, match="key_map must be a dict of old key prefix"):
        explorer.load(file, module=_flattening(), key_map=lambda k: k)
    with pytest.raises(ValueError, match="key_map renames the keys of a weights file"):
        explorer.load(file, key_map={"0.": "1."})
    with pytest.raises(ValueError, match="pass the file's path"):
        explorer.load(_flat(), key_map={"0.": "1."})


def test_longest_prefix_wins_and_is_applied_once():
    state = {"0.weight": 1, "0.1.weight": 2, "1.weight": 3}
    out = remap_keys(state, {"0.": "1.", "0.1.": "a.", "1.": "2."})
    assert out == {"1.weight": 1, "a.weight": 2, "2.weight": 3}


def test_name_is_honoured_for_a_checkpoint_folder(tmp_path):
    saved = explorer.save_checkpoint(explorer.zoo.mnist_mlp(hidden=(8,)), tmp_path / "ckpt")
    assert explorer.load(saved).name == "mnist-mlp"
    assert explorer.load(saved, name="renamed").name == "renamed"


def test_a_wrong_input_shape_for_the_file_fails_at_load(saved):
    file, _ = saved
    with pytest.raises(
        ValueError,
        match=r"input_shape=\(1, 28, 28\) does not fit .*pass "
        r"input_shape=\(784,\)",
    ):
        explorer.load(file, module=_flat(), input_shape=(1, 28, 28))
