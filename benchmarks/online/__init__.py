"""Helpers of ``benchmarks/bench_online.py``: the echo ceiling server, the load generator and process CPU accounting.

Benchmark code only: nothing in ``occ``, ``rating_engine`` or ``settlement`` imports it.
"""
