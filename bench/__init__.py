"""Benchmarks, run by `make bench`.

Each `bench_*.py` module exposes `run(work: Path) -> list[Row]`.
"""
