"""Portico's benchmarks: `python -m bench` (fleet scale) and `bench/render.py` (offline)."""
