"""uoe-bench: the harness that runs, measures, stores and reports."""
