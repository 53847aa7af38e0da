"""taskengine's benchmarks: the peer comparison harness (compare.py) and its adapters."""
