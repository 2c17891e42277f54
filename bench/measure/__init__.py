"""Measurements of a model on a fixed batch: FLOPs (`flops`), latency (`latency`), peak memory
(`memory`), profiler traces (`profile`), and the bundle the runner records per cell (`cell`).
The phase names parts emit into traces live in the library (`models.layers.ranges`)."""
