"""The registered models: one file each, each registering its builder in `models.registry.MODELS`.

A builder takes `(ModelConfig, ModelTask)` and returns a `SequenceClassifier` (README, "Adding a
model"). `register_all()` imports every module here, so a new file is picked up with no other edit.
"""

from __future__ import annotations

import importlib
import pkgutil


def register_all() -> None:
    """Import every module of this package, so that its `@MODELS.register` lines run."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
