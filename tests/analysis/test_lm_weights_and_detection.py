"""Neuron-to-logit weights, OV/QK SVD and head detection: results, options and errors
(values against transformer-lens: tests/reference)."""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch

from explorer.analysis import circuit_svd, detect_heads, neuron_logit_weights
from explorer.analysis.units import Head, Neuron


@pytest.fixture(scope="module")
def model(tiny_lm):
    return tiny_lm


def test_neuron_logit_weights_result(model):
    w = neuron_logit_weights(model, units=[Neuron(1, 5), "L0N2"])
    assert w.neurons == (Neuron(1, 5), Neuron(0, 2)) and w.values.shape == (2, 30)
    top, bottom = w.top(0, 3), w.top(0, 3, bottom=True)
    assert top[0][1] == pytest.approx(float(w.values[0].max()))
    assert bottom[0][1] == pytest.approx(float(w.values[0].min()))
    assert top[0][0].startswith("w")
    assert len(w.to_dataframe(n=4)) == 2 * 2 * 4
    assert "promotes" in w._repr_html_() and repr(w).startswith("NeuronLogitWeights(2 neurons")
    with pytest.raises(ValueError, match="units must be neurons"):
        neuron_logit_weights(model, units="head 0.1")
    with pytest.raises(ValueError, match="neuron 64 out of range"):
        neuron_logit_weights(model, units="neuron 0.64")


def test_circuit_svd_result(model):
    svd = circuit_svd(model, units=["head 1.2", Head(0, 0)], circuit="QK", n=4)
    assert svd.heads == (Head(1, 2), Head(0, 0)) and svd.sides == ("query", "key")
    assert (svd.S[:, :-1] >= svd.S[:, 1:] - 1e-6).all()  # strongest direction first
    query, key = svd.tokens(0, 0)
    assert len(query) == len(key) == 4
    frame = svd.to_dataframe()
    assert len(frame) == 2 * 8 and set(frame.columns) >= {"query", "key", "singular_value"}
    assert "QK circuit SVD" in svd._repr_html_() and repr(svd).startswith("CircuitSVD(QK, 2 heads")
    # U diag(S) V^T rebuilds the circuit
    w_q, w_k = model.weight("W_Q", 1)[2], model.weight("W_K", 1)[2]
    rebuilt = svd.U[0] @ torch.diag(svd.S[0]) @ svd.V[0].T
    assert torch.allclose(rebuilt, w_q @ w_k.T, atol=1e-5)
    with pytest.raises(ValueError, match="unknown circuit 'VO'"):
        circuit_svd(model, circuit="VO")


def test_detect_heads_options_change_scores(model):
    from explorer.data import repeated_tokens

    tokens = repeated_tokens(3, 6, 30, seed=1)
    plain = detect_heads(model, tokens, pattern="previous_token_head")
    no_bos = detect_heads(model, tokens, pattern="previous_token_head", exclude_bos=True)
    assert not torch.allclose(plain.scores, no_bos.scores)
    assert plain.per_example.shape == (3, 2, 4)
    assert repr(no_bos).startswith("HeadDetection(previous_token_head, mul, no BOS")
    assert len(no_bos.to_dataframe()) == 8 and "no BOS" in no_bos._repr_html_()
    # a custom pattern equal to the built-in one gives the same scores
    n = tokens.shape[1]
    custom = (torch.arange(n)[None, :] == torch.arange(n)[:, None] - 1).float()
    same = detect_heads(model, tokens, pattern=custom)
    assert torch.allclose(same.scores, plain.scores) and same.pattern == "custom"

    def every_key(t):
        return torch.tril(torch.ones(t.shape[0], t.shape[1], t.shape[1]))

    full = detect_heads(model, tokens, pattern=every_key, error_measure="abs")
    assert full.pattern == "every_key"
    with pytest.raises(ValueError, match="lower triangular"):
        detect_heads(model, tokens, pattern=torch.ones(n, n))
    with pytest.raises(ValueError, match="\\[pos, pos\\] or \\[batch, pos, pos\\]"):
        detect_heads(model, tokens, pattern=torch.ones(3, 3).tril())
    with pytest.raises(ValueError, match="unknown detection pattern 'induction'"):
        detect_heads(model, tokens, pattern="induction")
    with pytest.raises(ValueError, match="unknown error_measure"):
        detect_heads(model, tokens, pattern="induction_head", error_measure="l2")


@pytest.mark.parametrize(
    "name",
    [
        "explorer.analysis.neuron_logits",
        "explorer.analysis.circuit_svd",
        "explorer.analysis.head_detection",
    ],
)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
