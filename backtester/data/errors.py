"""Errors of the data layer. All are `ValueError`s: the command line shows one line, exit code 2."""

from __future__ import annotations


class DataError(ValueError):
    """Bad input data; the message names the source and, where there is one, the first bad row."""


class CatalogError(DataError):
    """The catalog on disk is missing a series, or does not match its manifest."""


class FetchError(DataError):
    """A download cannot go on: unknown symbol, refused credentials, or retries exhausted."""
