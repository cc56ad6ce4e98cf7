"""Benchmarks of geoft against the reference (TerraTorch). Run them with ``benchmarks/run_all.py``."""
