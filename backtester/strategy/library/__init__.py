"""Reference strategies."""
