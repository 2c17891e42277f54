"""The registries the application reads, and the one call that fills them.

`MODELS` lives in the library (`models.registry`) and is filled by the files of `baselines/`;
`SUITES` and `TASKS` live in `suites.registry` and are filled by the suite packages. `discover()`
imports both, so every command sees every model and suite.
"""

from __future__ import annotations

import baselines
from models.registry import MODELS
from suites import registry as suite_registry
from suites.registry import SUITES, TASKS

__all__ = ["MODELS", "SUITES", "TASKS", "discover"]


def discover() -> None:
    """Import every model file and suite package so that their registrations run (idempotent:
    a module runs its registrations once, on first import)."""
    baselines.register_all()
    suite_registry.register_all()
