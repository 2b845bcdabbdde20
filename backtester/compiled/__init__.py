"""Compiled kernels: plain-Python loops over arrays that numba compiles on first use (adr/0011)."""
