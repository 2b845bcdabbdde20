"""Performance statistics and round-trip trades, as pure functions over polars frames."""
