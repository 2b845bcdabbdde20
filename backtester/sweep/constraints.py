"""Constraints between sweep parameters, such as `fast < slow` or `fast * 3 <= slow`.

An expression is parsed once with `ast` and evaluated by walking a small whitelist of nodes:
parameter names (dotted names such as `fees.rate` too), numbers, strings, booleans, arithmetic,
comparisons and `and`/`or`/`not`. Nothing is ever passed to `eval`, so a config file cannot run code.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


class ConstraintError(ValueError):
    pass


class Constraint:
    """One boolean expression over parameter values; `names` are the parameters it reads."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError as exc:
            raise ConstraintError(f"constraint {text!r}: {exc.msg}") from None
        self._body = tree.body
        self.names: list[str] = []
        self._check(self._body)

    def __call__(self, values: Mapping[str, Any]) -> bool:
        try:
            return bool(self._eval(self._body, values))
        except ArithmeticError as exc:
            raise ConstraintError(f"constraint {self.text!r} with {dict(values)}: {exc}") from None

    def _check(self, node: ast.expr) -> None:
        name = _dotted(node)
        if name is not None:
            if name not in self.names:
                self.names.append(name)
            return
        match node:
            case ast.Constant(value=value) if isinstance(value, int | float | str | bool):
                return
            case ast.BinOp(left=left, op=op, right=right) if type(op) in _BINARY:
                self._check(left)
                self._check(right)
            case ast.UnaryOp(op=ast.USub() | ast.UAdd() | ast.Not(), operand=operand):
                self._check(operand)
            case ast.Compare(left=left, ops=ops, comparators=rest) if all(
                type(op) in _COMPARE for op in ops
            ):
                for part in (left, *rest):
                    self._check(part)
            case ast.BoolOp(values=parts):
                for part in parts:
                    self._check(part)
            case _:
                shown = ast.unparse(node)
                raise ConstraintError(
                    f"constraint {self.text!r}: {shown!r} is not allowed (use parameter names, "
                    "numbers, + - * / // % **, comparisons, and/or/not)"
                )

    def _eval(self, node: ast.expr, values: Mapping[str, Any]) -> Any:
        name = _dotted(node)
        if name is not None:
            return values[name]
        match node:
            case ast.Constant(value=value):
                return value
            case ast.BinOp(left=left, op=op, right=right):
                return _BINARY[type(op)](self._eval(left, values), self._eval(right, values))
            case ast.UnaryOp(op=ast.USub(), operand=operand):
                return -self._eval(operand, values)
            case ast.UnaryOp(op=ast.UAdd(), operand=operand):
                return +self._eval(operand, values)
            case ast.UnaryOp(op=ast.Not(), operand=operand):
                return not self._eval(operand, values)
            case ast.Compare(left=left, ops=ops, comparators=rest):
                current = self._eval(left, values)
                for comparison, right in zip(ops, rest, strict=True):
                    following = self._eval(right, values)
                    if not _COMPARE[type(comparison)](current, following):
                        return False
                    current = following
                return True
            case ast.BoolOp(op=ast.And(), values=parts):
                return all(self._eval(part, values) for part in parts)
            case ast.BoolOp(values=parts):
                return any(self._eval(part, values) for part in parts)
        raise AssertionError(f"unchecked node {ast.dump(node)}")  # _check admits no other node


def _dotted(node: ast.expr) -> str | None:
    """`fast` -> "fast", `fees.rate` -> "fees.rate"; None for anything that is not a (dotted) name."""
    match node:
        case ast.Name(id=name):
            return name
        case ast.Attribute(value=value, attr=attr):
            head = _dotted(value)
            return None if head is None else f"{head}.{attr}"
    return None
