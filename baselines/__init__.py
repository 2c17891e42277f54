"""Baseline models: one file each, each registering a builder in `bench.catalog.MODELS`."""
