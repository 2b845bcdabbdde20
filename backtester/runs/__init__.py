"""Reproducible runs: config in, a run directory with a manifest out, and `verify` to replay it."""
