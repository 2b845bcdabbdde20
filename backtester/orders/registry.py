"""The one table of order types, by name: risk, the venue and the strategy API look an order's
type up here, so a new type is one module and one `register` call."""

from __future__ import annotations

from collections.abc import Mapping

from backtester.orders.base import OrderKind

_KINDS: dict[str, OrderKind] = {}
# The table itself, read-only, for the per-order path: one `KINDS.get` instead of a call to
# `find` that makes it.
KINDS: Mapping[str, OrderKind] = _KINDS


class UnknownOrderType(KeyError):
    pass


def register(kind: OrderKind) -> OrderKind:
    """Add an order type (an instance of an `OrderKind` subclass) under its `name`."""
    if not kind.name:
        raise ValueError(f"{type(kind).__name__} has no name")
    if kind.name in _KINDS and type(_KINDS[kind.name]) is not type(kind):
        raise ValueError(f"order type {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    _KINDS.pop(name, None)


def kind_of(name: str) -> OrderKind:
    kind = _KINDS.get(name)
    if kind is None:
        raise UnknownOrderType(f"unknown order type {name!r}; known: {', '.join(sorted(_KINDS))}")
    return kind


def find(name: str) -> OrderKind | None:
    """The order type registered under `name`, or None."""
    return _KINDS.get(name)


def known(name: str) -> bool:
    return name in _KINDS


def names() -> list[str]:
    return sorted(_KINDS)
