"""CPU stand-ins that let ndif 0.1.2's server run on a machine without a GPU (local tests only).

Loaded (as ``sitecustomize``) by every Python process that ``scripts/ndif_local.sh``
starts. ``NDIF_LOCAL_COMPAT=1``: two fixes for version mismatches between ndif 0.1.2,
nnsight 0.8.1 and transformers 5.x (needed with or without a GPU). ``NDIF_LOCAL_CPU=1``
(no GPU): ndif places each model on a GPU and checks that it landed there; each CPU patch
replaces one such step, and nothing else. What the traces run (nnsight's request deserialisation, the sandbox, the
interleaving of a user's edits, the result upload and pub/sub) is ndif's and nnsight's own
code, unpatched. Each patch names the call it replaces and why.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys

_CPU = os.environ.get("NDIF_LOCAL_CPU") == "1"
_COMPAT = os.environ.get("NDIF_LOCAL_COMPAT") == "1" or _CPU

if _COMPAT:
    _MEMORY = int(os.environ.get("NDIF_LOCAL_GPU_BYTES", str(8 << 30)))

    def _patch_torch(module) -> None:
        import types

        import torch

        cuda = torch.cuda
        # model actor: set_default_gpu / set_process_limits / sync after load / to_cache
        for name in (
            "set_device",
            "synchronize",
            "empty_cache",
            "set_per_process_memory_fraction",
            "reset_peak_memory_stats",
            "reset_max_memory_allocated",
        ):
            setattr(cuda, name, lambda *a, **k: None)
        # build_max_memory, set_process_limits and the memory metrics read the card's size
        cuda.get_device_properties = lambda *a, **k: types.SimpleNamespace(
            total_memory=_MEMORY, name="cpu (ndif_local)"
        )
        cuda.mem_get_info = lambda *a, **k: (_MEMORY, _MEMORY)
        for name in (
            "memory_allocated",
            "max_memory_allocated",
            "memory_reserved",
            "max_memory_reserved",
        ):
            setattr(cuda, name, lambda *a, **k: 0)

    def _patch_nnsight(module) -> None:
        from nnsight.modeling.mixins.remotable import Remotable

        # ndif 0.1.2 passes trust_remote_code= to these; nnsight 0.8.1 (the newest release)
        # does not take it. Only False is used here.
        describe = Remotable.describe_checkpoint.__func__
        max_tp = Remotable.max_tp_size.__func__
        Remotable.describe_checkpoint = classmethod(
            lambda cls, key, dtype, trust_remote_code=False: describe(cls, key, dtype)
        )
        Remotable.max_tp_size = classmethod(
            lambda cls, key, trust_remote_code=False: max_tp(cls, key)
        )
        if not _CPU:
            return
        # the actor asks for ``device=<gpu index>``; the weights stay on the CPU instead
        load = Remotable.from_model_key.__func__

        def from_model_key(cls, key, **kwargs):
            if isinstance(kwargs.get("device"), int):
                kwargs["device"] = "cpu"
            return load(cls, key, **kwargs)

        Remotable.from_model_key = classmethod(from_model_key)

    def _patch_nnsight_transformers(module) -> None:
        # transformers 5.24's check_task names the pipeline class as a dotted string;
        # nnsight 0.8.1 reads the class's _load_tokenizer flag off it and finds none, so a
        # meta load (the server's and the CLI's model key) builds a pipeline without a
        # tokenizer and fails ("Impossible to guess which tokenizer to use")
        import importlib

        flags = {
            "tokenizer": "_load_tokenizer",
            "image_processor": "_load_image_processor",
            "feature_extractor": "_load_feature_extractor",
            "processor": "_load_processor",
        }

        def loaded(self):
            from transformers.pipelines import check_task

            impl = check_task(self.task)[1]["impl"]
            if isinstance(impl, str):
                mod, _, cls = impl.rpartition(".")
                impl = getattr(importlib.import_module(mod), cls)
            return {attr for attr, flag in flags.items() if getattr(impl, flag, False)}

        module.TransformersModel._loaded_preprocessors = loaded

    def _patch_ndif_util(module) -> None:
        # checks that every weight sits on the assigned GPUs: here they are on the CPU
        module.verify_device_placement = lambda *a, **k: None

    _AFTER_IMPORT = {
        "nnsight.modeling.mixins.remotable": _patch_nnsight,
        "nnsight.modeling.transformers": _patch_nnsight_transformers,
    }
    if _CPU:
        _AFTER_IMPORT["torch"] = _patch_torch
        _AFTER_IMPORT["ndif.services.ray.deployments.modeling.util"] = _patch_ndif_util

    class _Patcher(importlib.abc.MetaPathFinder):
        """Runs a patch right after its module has been imported."""

        def find_spec(self, name, path=None, target=None):
            if name not in _AFTER_IMPORT:
                return None
            sys.meta_path.remove(self)
            try:
                spec = importlib.util.find_spec(name)
            finally:
                sys.meta_path.insert(0, self)
            if spec is None or spec.loader is None:
                return spec
            loader, patch = spec.loader, _AFTER_IMPORT[name]

            class _Loader(importlib.abc.Loader):
                def create_module(self, spec):
                    return loader.create_module(spec)

                def exec_module(self, module):
                    loader.exec_module(module)
                    patch(module)

            spec.loader = _Loader()
            return spec

    sys.meta_path.insert(0, _Patcher())
