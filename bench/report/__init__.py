"""Reports built from records only (they never rerun a model)."""
