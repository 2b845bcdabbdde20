"""Market data: loading, validation and repair of bar series."""
