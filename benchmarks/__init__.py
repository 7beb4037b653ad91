"""Benchmarks for diyc and its peers (runc, crun); run with pytest-benchmark."""
