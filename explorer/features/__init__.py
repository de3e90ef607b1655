"""Features: sparse autoencoders and transcoders (SAELens's) on a model handle.

A ``SparseAutoencoder`` is one SAELens SAE with the hook it reads; ``load_sae`` opens
SAELens's folder format and checks it against a handle; ``splice_hooks`` / ``run_spliced``
/ ``spliced`` put it into a forward pass with its error term kept, with feature edits
(``{feature: value | "zero" | Scale(f) | Add(a)}``) for ablation and steering;
``sae_quality`` reports explained variance, L0, dead and dense features and the loss
recovered on held-out inputs. explorer
trains nothing itself here: SAELens does.

Layer: above ``models`` (it runs handles through their hooks), below ``analysis`` (whose
unit vocabulary can then name features).

>>> import torch
>>> from explorer.models import zoo
>>> model = zoo.attention_only_transformer(n_layers=1, d_model=8, d_vocab=10, n_ctx=6)
>>> sae = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=8, d_sae=16, k=4)
>>> out = run_spliced(model, torch.tensor([[1, 2, 3]]), sae, {2: Add(3.0)})
>>> out.shape
torch.Size([1, 3, 10])
"""

from explorer.features.loading import activation_width, check_fits, load_sae, sae_folders
from explorer.features.quality import SAEQuality, sae_quality
from explorer.features.sae import ARCHITECTURES, SparseAutoencoder
from explorer.features.splice import (
    Add,
    Edit,
    Scale,
    check_hooks_fit,
    edit_features,
    run_spliced,
    splice_hooks,
    spliced,
)

__all__ = [
    "ARCHITECTURES",
    "Add",
    "Edit",
    "SAEQuality",
    "Scale",
    "SparseAutoencoder",
    "activation_width",
    "check_fits",
    "check_hooks_fit",
    "edit_features",
    "load_sae",
    "run_spliced",
    "sae_folders",
    "sae_quality",
    "splice_hooks",
    "spliced",
]
