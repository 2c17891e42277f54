"""LRA ListOps: `generate` (the seeded LRA sampler and the vocabulary), `tsv` (the official
files of the LRA release) and `load` (the task loader and its cache of generated data)."""
