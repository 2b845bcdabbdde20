"""An exchange's markets in the catalog: what `data markets` stored, and instruments built from it.

    <root>/<exchange>/markets/<market>/markets-<sha256[:16]>.json   {symbol: ccxt market}
    <root>/<exchange>/markets/<market>/tiers-<sha256[:16]>.json     {symbol: ccxt leverage tiers}
    <root>/<exchange>/markets/<market>/manifest.json                the commit point

`market` is `spot` or `swap` (every contract market: perpetual swaps and dated futures, as ccxt
lists them). A snapshot replaces the previous one whole, the way a series write does (adr/0010):
content-addressed files first (temp, fsync, rename), the manifest naming them and their hashes
last; the files it no longer names are removed after. A reader goes through the manifest only and
checks each file's hash before it trusts it, so it never sees half a snapshot or a changed file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec

from backtester.data.atomic import (
    TEMP_SUFFIX,
    atomic_write_bytes,
    exclusive_lock,
    sha256_bytes,
    sha256_file,
)
from backtester.data.errors import CatalogError
from backtester.data.layout import LOCK_NAME, MANIFEST_NAME, MARKETS
from backtester.data.series_manifest import SourceEntry
from backtester.domain.instrument import Instrument, MarginMode

FORMAT_VERSION = 1
MARKETS_DIR = "markets"
PrecisionMode = Literal["tick_size", "decimal_places"]


class SnapshotFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: str
    sha256: str
    entries: int


class MarketsManifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`fetched_at` (UTC, ISO) is when the exchange was asked; `precision_mode` how its markets
    state precision; `tiers` is None when none were fetched (`--no-tiers`, or an exchange that
    publishes none)."""

    exchange: str
    market: str
    fetched_at: str
    source: SourceEntry
    ccxt_version: str
    precision_mode: PrecisionMode
    markets: SnapshotFile
    tiers: SnapshotFile | None
    format: int = FORMAT_VERSION


_encoder = msgspec.json.Encoder(order="sorted")
_manifest_decoder = msgspec.json.Decoder(MarketsManifest)


def snapshot_dir(root: str | Path, exchange: str, market: str) -> Path:
    if market not in MARKETS:
        raise CatalogError(f"market {market!r} is not one of {', '.join(MARKETS)}")
    return Path(root) / exchange / MARKETS_DIR / market


def market_of(symbol: str) -> str:
    """The snapshot that lists a ccxt symbol: contracts (`BTC/USDT:USDT`) under swap."""
    return "swap" if ":" in symbol else "spot"


def write_snapshot(
    root: str | Path,
    exchange: str,
    market: str,
    markets: Mapping[str, Mapping[str, Any]],
    tiers: Mapping[str, Sequence[Mapping[str, Any]]] | None,
    *,
    fetched_at: str,
    source: SourceEntry,
    ccxt_version: str,
    precision_mode: PrecisionMode,
) -> MarketsManifest:
    """Store one snapshot in place of the previous one; returns the committed manifest."""
    directory = snapshot_dir(root, exchange, market)
    with exclusive_lock(directory / LOCK_NAME, f"{exchange} {market} markets"):
        listed = _write_file(directory, "markets", markets)
        tiered = None if tiers is None else _write_file(directory, "tiers", tiers)
        manifest = MarketsManifest(
            exchange=exchange,
            market=market,
            fetched_at=fetched_at,
            source=source,
            ccxt_version=ccxt_version,
            precision_mode=precision_mode,
            markets=listed,
            tiers=tiered,
        )
        text = msgspec.json.format(msgspec.json.encode(manifest), indent=1)
        atomic_write_bytes(directory / MANIFEST_NAME, text + b"\n")
        keep = {listed.path, *([tiered.path] if tiered else [])}
        for leftover in sorted(directory.glob("*.json*")):
            unnamed = leftover.name not in keep and leftover.name != MANIFEST_NAME
            if unnamed and (leftover.suffix == ".json" or leftover.name.endswith(TEMP_SUFFIX)):
                leftover.unlink()
    return manifest


def _write_file(directory: Path, stem: str, content: Mapping[str, Any]) -> SnapshotFile:
    data = _encoder.encode(content) + b"\n"
    digest = sha256_bytes(data)
    name = f"{stem}-{digest[:16]}.json"
    target = directory / name
    if not (target.is_file() and sha256_file(target) == digest):
        atomic_write_bytes(target, data)
    return SnapshotFile(path=name, sha256=digest, entries=len(content))


class MarketsSnapshot:
    """A stored snapshot, its files checked against the manifest's hashes."""

    def __init__(self, directory: Path, manifest: MarketsManifest) -> None:
        self.directory = directory
        self.manifest = manifest
        self.markets: dict[str, dict[str, Any]] = self._load(manifest.markets)
        self.tiers: dict[str, list[dict[str, Any]]] = (
            self._load(manifest.tiers) if manifest.tiers is not None else {}
        )

    @property
    def label(self) -> str:
        return f"{self.manifest.exchange} {self.manifest.market} markets at {self.directory}"

    @property
    def sha256(self) -> str:
        """The snapshot's identity: the hashes of the files it consists of."""
        tiers = self.manifest.tiers
        parts = [self.manifest.markets.sha256, None if tiers is None else tiers.sha256]
        return sha256_bytes(_encoder.encode(parts))

    def _load(self, entry: SnapshotFile) -> Any:
        path = self.directory / entry.path
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CatalogError(f"{path}: named by the markets manifest but missing") from None
        if sha256_bytes(data) != entry.sha256:
            raise CatalogError(f"{path}: content hash does not match the markets manifest")
        try:
            return msgspec.json.decode(data)
        except msgspec.DecodeError as exc:
            raise CatalogError(f"{path}: not valid JSON: {exc}") from None

    def instrument(
        self,
        symbol: str,
        *,
        leverage: float = 1.0,
        margin_mode: MarginMode = MarginMode.ISOLATED,
    ) -> Instrument:
        """The instrument of `symbol` as the exchange lists it, traded at `leverage`. Raises
        `KeyError` for a symbol the snapshot does not list, `InstrumentError` for one that cannot
        be traded so."""
        found = self.markets[symbol]
        return Instrument.from_ccxt(
            found,
            self.tiers.get(symbol),
            leverage=leverage,
            margin_mode=margin_mode,
            precision_mode=self.manifest.precision_mode,
        )

    def similar(self, symbol: str, limit: int = 3) -> list[str]:
        """Listed symbols of the same base currency, for an error message."""
        base = symbol.split("/", 1)[0]
        return sorted(s for s in self.markets if s.split("/", 1)[0] == base)[:limit]


def read_snapshot(root: str | Path, exchange: str, market: str) -> MarketsSnapshot:
    directory = snapshot_dir(root, exchange, market)
    path = directory / MANIFEST_NAME
    try:
        manifest = _manifest_decoder.decode(path.read_bytes())
    except FileNotFoundError:
        raise CatalogError(
            f"{path}: no {exchange} {market} markets snapshot; store one with "
            f"`python -m backtester data markets --exchange {exchange} --market {market}`"
        ) from None
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise CatalogError(f"{path}: invalid markets manifest: {exc}") from None
    if manifest.format != FORMAT_VERSION:
        raise CatalogError(f"{path}: format {manifest.format} is not {FORMAT_VERSION}")
    return MarketsSnapshot(directory, manifest)
