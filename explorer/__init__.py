"""explorer: Jupyter widgets and analysis for the science of deep learning.

>>> import explorer
>>> model = explorer.zoo.attention_only_transformer(n_layers=2, d_vocab=20, n_ctx=16)
>>> model.n_layers
2
"""

from explorer.models import (
    CNNConfig,
    MLPConfig,
    ModelHandle,
    TransformerConfig,
    load,
    save_checkpoint,
    zoo,
)

__version__ = "0.1.0"

__all__ = [
    "CNNConfig",
    "MLPConfig",
    "ModelHandle",
    "TransformerConfig",
    "load",
    "save_checkpoint",
    "zoo",
]
