"""Generic infrastructure of the engine: it knows nothing of trading."""
