"""Measurements of a model on a fixed batch: FLOPs (`flops`), latency (`latency`), peak memory
(`memory`), profiler traces (`profile`), the named phase ranges parts emit (`ranges`), and the
bundle the runner records per cell (`cell`). Imports nothing here, so models can import `ranges`
without pulling in the rest."""
