"""``GrokkingSetting.seed`` seeds the initial weights, ``data_seed`` the train/test split."""

from __future__ import annotations

import torch

from explorer.models import zoo
from explorer.studies.grokking import GrokkingSetting, grokking_data


def test_seed_moves_the_weights_and_data_seed_moves_the_split():
    base = GrokkingSetting(p=11, train_frac=0.5)
    other_init, other_split = base.replace(seed=1), base.replace(data_seed=1)
    assert torch.equal(grokking_data(base).train_tokens, grokking_data(other_init).train_tokens)
    assert not torch.equal(
        grokking_data(base).train_tokens, grokking_data(other_split).train_tokens
    )

    def weights(s: GrokkingSetting) -> torch.Tensor:
        return zoo.modular_addition_transformer(s.p, seed=s.seed, d_model=16).model.W_E

    assert torch.equal(weights(base), weights(other_split))
    assert not torch.equal(weights(base), weights(other_init))
