"""The one exception type for bad input: a name, setting, file or directory the person running
the harness gave wrongly (an unknown model, a malformed `--set`, a value out of range, a run
directory that is not one). Its message says what was wrong and how to fix it; the command line
prints it as `bench: error: ...` and exits 2, without a traceback.

Every other exception is a bug in uoe-bench (or in a model): the command line prints its
traceback and exits 1, so a bug never looks like a user's mistake. It lives in the library, the
lowest layer, so that models, suites and the application raise the same type.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input; the message names the fix."""


class NoCausalForm(InputError):
    """A model asked for its causal (language-model) form that has none; the message says why
    (Linformer's projection along the sequence mixes later tokens into every position). A suite
    records such a cell as skipped with this reason."""
