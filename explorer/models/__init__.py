"""Models: the handle protocol (``Handle``) and its backends, loading, checkpoints, the zoo.

>>> from explorer.models import MLPConfig, load, zoo
>>> load(MLPConfig(hidden=(16, 8))).n_layers
2
>>> zoo.attention_only_transformer(n_layers=1, d_vocab=10, n_ctx=8).hook_name("z", 0)
'blocks.0.attn.hook_z'
"""

from explorer.models import builders, fast_paths, light, light_hooks, sweeps, zoo
from explorer.models.checkpoint import (
    check_config_fits_weights,
    checkpoint_files,
    is_checkpoint,
    load_checkpoint,
    load_state,
    read_header,
    read_tagged_json,
    read_weights,
    save_checkpoint,
    tensor_shapes,
)
from explorer.models.config import (
    CNNConfig,
    MLPConfig,
    TransformerConfig,
    check_size,
    config_from_dict,
)
from explorer.models.handle import (
    LayerModules,
    ModelHandle,
    Spent,
    TransformerLensHandle,
)
from explorer.models.hf import (
    Parity,
    check_parity,
    is_hf_folder,
    is_hf_model,
    load_folder,
    load_model,
    load_tokenizer,
    offline,
    offline_error,
    tl_config,
)
from explorer.models.hooked_module import (
    Block,
    LinearReader,
    fans_out,
    find_blocks,
    linear_reader,
    wrap_module,
)
from explorer.models.learning_coefficient import (
    LearningCoefficient,
    LLCSampler,
    learning_coefficient,
)
from explorer.models.light_handle import LightHandle
from explorer.models.loading import (
    load,
    remap_keys,
    wrap,
)
from explorer.models.module_handle import ModuleHandle
from explorer.models.protocol import WEIGHT_NAMES, Handle
from explorer.models.shapes import (
    check_image_shape,
    dry_forward,
    expected_input,
    first_layer,
    infer_image_shape,
    infer_input_shape,
    leading_unflatten,
)
from explorer.models.shipped import (
    load_shipped,
    shipped_meta,
    shipped_names,
    shipped_path,
)

__all__ = [
    "WEIGHT_NAMES",
    "Block",
    "CNNConfig",
    "Handle",
    "LLCSampler",
    "LayerModules",
    "LearningCoefficient",
    "LightHandle",
    "LinearReader",
    "MLPConfig",
    "ModelHandle",
    "ModuleHandle",
    "Parity",
    "Spent",
    "TransformerConfig",
    "TransformerLensHandle",
    "builders",
    "check_config_fits_weights",
    "check_image_shape",
    "check_parity",
    "check_size",
    "checkpoint_files",
    "config_from_dict",
    "dry_forward",
    "expected_input",
    "fans_out",
    "fast_paths",
    "find_blocks",
    "first_layer",
    "infer_image_shape",
    "infer_input_shape",
    "is_checkpoint",
    "is_hf_folder",
    "is_hf_model",
    "leading_unflatten",
    "learning_coefficient",
    "light",
    "light_hooks",
    "linear_reader",
    "load",
    "load_checkpoint",
    "load_folder",
    "load_model",
    "load_shipped",
    "load_state",
    "load_tokenizer",
    "offline",
    "offline_error",
    "read_header",
    "read_tagged_json",
    "read_weights",
    "remap_keys",
    "save_checkpoint",
    "shipped_meta",
    "shipped_names",
    "shipped_path",
    "sweeps",
    "tensor_shapes",
    "tl_config",
    "wrap",
    "wrap_module",
    "zoo",
]
