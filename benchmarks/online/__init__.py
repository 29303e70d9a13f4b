"""The modules of the load-testing harness ``benchmarks/bench_online.py`` (``occ bench``): the softswitch simulator,
the ceiling workloads and servers, load processes, measurement, correctness checks and the report.

Benchmark code only: nothing in ``occ``, ``rating_engine`` or ``settlement`` imports it.
"""
