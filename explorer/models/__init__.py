"""Models: the adapter (``ModelHandle``), loading, checkpoints, and the tutorial zoo."""

from explorer.models.checkpoint import load_checkpoint, save_checkpoint
from explorer.models.config import CNNConfig, MLPConfig, TransformerConfig
from explorer.models.handle import ModelHandle
from explorer.models.hooked_module import Block
from explorer.models.loading import load, wrap

__all__ = [
    "Block",
    "CNNConfig",
    "MLPConfig",
    "ModelHandle",
    "TransformerConfig",
    "load",
    "load_checkpoint",
    "save_checkpoint",
    "wrap",
]
