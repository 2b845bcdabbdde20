"""Run configs on disk: TOML in (with `--set` overrides), one-line errors out, TOML back out.

Decoding goes TOML text -> plain tables (tomllib, which knows lines) -> overrides -> `RunConfig`
(msgspec, which knows key paths), so an override that breaks the config is reported exactly like the
same mistake in the file.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Sequence
from datetime import date, time
from pathlib import Path
from typing import Any

import msgspec

from backtester.config import ConfigError, RunConfig, kinds_of

_KIND_LABELS = {"fees": "fee model", "slippage": "slippage model", "data": "data source kind"}
_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def load_config(
    path: str | Path,
    *,
    overrides: Sequence[str] = (),
    seed: int | None = None,
    output_dir: str | None = None,
) -> RunConfig:
    """Read, override and decode a config file; every problem is a `ConfigError` naming file and key."""
    label = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("", f"config file not found: {label}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("", f"cannot read config file: {exc}", source=label) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc).replace("at end of document", f"at end of file, line {_lines(text)}")
        raise ConfigError("", f"TOML syntax error: {message}", source=label) from None
    for override in overrides:
        apply_override(raw, override)
    if seed is not None:
        raw["seed"] = seed
    if output_dir is not None:
        raw["output_dir"] = output_dir
    return decode_config(raw, label)


def dates_as_text(value: Any) -> Any:
    """TOML dates and date-times (`start = 2024-03-10`, also from `--set`) as the ISO text a config
    takes for them, as if they had been quoted."""
    if isinstance(value, dict):
        return {key: dates_as_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [dates_as_text(item) for item in value]
    if isinstance(value, date | time):
        return value.isoformat()
    return value


def _lines(text: str) -> int:
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def decode_config(raw: dict[str, Any], source: str) -> RunConfig:
    try:
        return msgspec.convert(dates_as_text(raw), type=RunConfig)
    except msgspec.ValidationError as exc:
        raise translate(str(exc), source) from None


def translate(
    error: str,
    source: str | None = None,
    *,
    under: str = "",
    schema: type[msgspec.Struct] = RunConfig,
) -> ConfigError:
    """A msgspec validation message (`... - at `$.a[0].b``) as a ConfigError with a dotted key;
    `under` is the key of the table that was decoded, when it was not the whole file, and `schema`
    the type it was decoded into (for the valid keys and values an error lists)."""
    match = _AT.match(error)
    assert match is not None  # the pattern matches any text
    relative = (match["path"] or "").lstrip(".")
    message, path = match["message"], _join(under, relative)
    if found := re.fullmatch(r"Object contains unknown field `(.+)`", message):
        hint = _did_you_mean(found[1], _keys_at(schema, relative))
        return ConfigError(_join(path, found[1]), f"unknown key{hint}", source=source)
    if found := re.fullmatch(r"Invalid enum value (.+)", message):
        valid = ", ".join(_enum_values_at(schema, relative))
        return ConfigError(
            path, f"invalid value {found[1]}{f' (valid: {valid})' if valid else ''}", source=source
        )
    if found := re.fullmatch(r"Object missing required field `(.+)`", message):
        key = _join(path, found[1])
        valid = f" (valid: {', '.join(kinds_of(path))})" if found[1] == "kind" else ""
        return ConfigError(key, f"missing required key{valid}", source=source)
    if path.endswith("kind") and (found := re.fullmatch(r"Invalid value (.+)", message)):
        parent = path.rsplit(".", 1)[0]
        label = _KIND_LABELS.get(parent.split("[", 1)[0], "kind")
        valid = ", ".join(kinds_of(parent))
        return ConfigError(path, f"unknown {label} {found[1]} (valid: {valid})", source=source)
    text = message.replace("`", "")
    return ConfigError(path, text[:1].lower() + text[1:], source=source)


def _did_you_mean(key: str, valid: list[str]) -> str:
    if not valid:
        return ""
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (valid keys here: {', '.join(valid)})"


def _types_at(schema: type[msgspec.Struct], path: str) -> list[msgspec.inspect.Type]:
    """The types a value at `path` (`data[0].kind`) may have: every member of a union, since which
    one applies depends on the value."""
    try:
        parts = _parse_key(path, None) if path else []
    except ConfigError:
        return []
    types = _members([msgspec.inspect.type_info(schema)])
    for part in parts:
        found: list[msgspec.inspect.Type] = []
        for kind in types:
            if isinstance(part, int) and isinstance(kind, msgspec.inspect.ListType):
                found.append(kind.item_type)
            elif isinstance(part, str) and isinstance(kind, msgspec.inspect.StructType):
                found += [f.type for f in kind.fields if f.encode_name == part]
        types = _members(found)
    return types


def _members(types: list[msgspec.inspect.Type]) -> list[msgspec.inspect.Type]:
    flat: list[msgspec.inspect.Type] = []
    for kind in types:
        if isinstance(kind, msgspec.inspect.UnionType):
            flat += _members(list(kind.types))
        elif isinstance(kind, msgspec.inspect.Metadata):
            flat += _members([kind.type])
        else:
            flat.append(kind)
    return flat


def _keys_at(schema: type[msgspec.Struct], path: str) -> list[str]:
    keys: list[str] = []
    for kind in _types_at(schema, path):
        if isinstance(kind, msgspec.inspect.StructType):
            tag = kind.cls.__struct_config__.tag_field
            keys += [f.encode_name for f in kind.fields if f.encode_name not in keys]
            if tag is not None and tag not in keys:
                keys.insert(0, tag)
    return keys


def _enum_values_at(schema: type[msgspec.Struct], path: str) -> list[str]:
    values: list[str] = []
    for kind in _types_at(schema, path):
        if isinstance(kind, msgspec.inspect.EnumType):
            values += [str(member.value) for member in kind.cls]
        elif isinstance(kind, msgspec.inspect.LiteralType):
            values += [str(value) for value in kind.values]
    return values


def _join(path: str, key: str) -> str:
    if not key:
        return path
    return f"{path}.{key}" if path and not key.startswith("[") else path + key


# --- --set key.path=value ----------------------------------------------------------------------


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Set `key.path=value` in the plain tables; the value is read as a TOML value, else as text."""
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError("", f"--set expects key.path=value, got {override!r}")
    set_key_path(raw, key, _parse_value(text.strip()), source="--set")


def set_key_path(raw: dict[str, Any], key: str, value: Any, *, source: str | None = None) -> None:
    """Set `a.b[0].c` in plain tables, creating missing tables on the way; a path that does not
    fit the tables is a `ConfigError` naming `key` (and `source`)."""
    parts = _parse_key(key, source)
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        node = _child(node, part, parts[i + 1], key, source)
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or not 0 <= last < len(node):
            raise ConfigError(key, "no such list element", source=source)
        node[last] = value
    else:
        if not isinstance(node, dict):
            raise ConfigError(key, "not inside a table", source=source)
        node[last] = value


def _parse_key(key: str, source: str | None) -> list[str | int]:
    parts: list[str | int] = []
    position = 0
    for found in _PATH_PART.finditer(key):
        between = key[position : found.start()]
        if between not in ("", "."):
            raise ConfigError(key, "malformed key path", source=source)
        parts.append(int(found[2]) if found[2] is not None else found[1])
        position = found.end()
    if not parts or position != len(key):
        raise ConfigError(key, "malformed key path", source=source)
    return parts


def _child(node: Any, part: str | int, following: str | int, key: str, source: str | None) -> Any:
    if isinstance(part, int):
        if not isinstance(node, list) or not 0 <= part < len(node):
            raise ConfigError(key, "no such list element", source=source)
        return node[part]
    if not isinstance(node, dict):
        raise ConfigError(key, "not inside a table", source=source)
    if part not in node:
        # A missing table is created, so `--set strategy.params.fast=5` works without [strategy.params].
        node[part] = [] if isinstance(following, int) else {}
    return node[part]


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


# --- TOML out ----------------------------------------------------------------------------------

_HEADER = (
    "# A run config as decoded: every default filled in. It decodes back to the same config_id.\n"
)


def dump_config(cfg: RunConfig) -> str:
    """TOML text that decodes to `cfg` again. TOML has no null: keys whose value is None are left out,
    which decodes back to the same None default."""
    lines: list[str] = []
    _emit_table(lines, [], msgspec.to_builtins(cfg))
    return _HEADER + "\n".join(lines).strip("\n") + "\n"


def _emit_table(lines: list[str], path: list[str], table: dict[str, Any]) -> None:
    nested: list[tuple[str, Any]] = []
    for key, value in table.items():
        if value is None:
            continue
        if isinstance(value, dict) or _is_table_array(value):
            nested.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in nested:
        sub = [*path, key]
        header = ".".join(_key(part) for part in sub)
        if isinstance(value, dict):
            lines.extend(("", f"[{header}]"))
            _emit_table(lines, sub, value)
        else:
            for item in value:
                lines.extend(("", f"[[{header}]]"))
                _emit_table(lines, sub, item)


def _is_table_array(value: Any) -> bool:
    return (
        isinstance(value, list | tuple) and bool(value) and all(isinstance(v, dict) for v in value)
    )


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None)
        return "{" + items + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _string(text: str) -> str:
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
