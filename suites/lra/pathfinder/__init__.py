"""LRA Pathfinder (and Path-X): `draw` (parameters, stamps, canvas), `snakes` (seeding and growing
snakes), `images` (whole images: targets, distractors, markers) and `load` (the task loader:
seeded chunks, splits and the cache)."""
