"""Benchmark suites: one package per suite (a task = data + spec + head), plus the shared data
types (`suites.data`) and specs (`suites.spec`)."""
