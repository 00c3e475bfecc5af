"""The native routing files (``routing/manifest.json`` and its CSV/Parquet tables).

The format is the one ``flowmatrix synth network`` writes and ``docs/synth.md``
describes: a manifest naming, per PE, its RD table, connected/static prefixes
and optionally its own VPN table, plus the route reflector's VPN and global
tables, each with the time it was taken. Every problem is a
:class:`~flowmatrix.errors.RoutingError` naming the file and line (CSV) or
row (Parquet). :func:`write_native` writes a :class:`RoutingState` back in
the same format (Parquet tables), so that :func:`read_native` reads it again.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from flowmatrix.addr import format_addresses, format_prefixes
from flowmatrix.config.model import NetworkConfig
from flowmatrix.errors import FlowmatrixError, RoutingError
from flowmatrix.routing.tables import (
    BGP_DEFAULTS,
    BgpTable,
    ConnectedTable,
    PeTables,
    RdTable,
    RoutingState,
    RrTables,
    parse_addresses,
    parse_prefixes,
)

__all__ = [
    "ROUTING_FORMAT",
    "bgp_table_arrow",
    "connected_table_arrow",
    "find_routing_dir",
    "iso_time",
    "parse_time_ms",
    "rd_table_arrow",
    "read_bgp_table",
    "read_connected_table",
    "read_native",
    "read_rd_table",
    "validate_native",
    "write_native",
]

#: the ``format`` value of a routing manifest
ROUTING_FORMAT = "flowmatrix-routing/1"

_RD = r"^(\d+|\d+\.\d+\.\d+\.\d+):\d+$"
_INT = r"^-?\d+$"
_RD_COLUMNS = ("if_index", "interface", "vrf", "rd", "import_rts", "export_rts")
_CONNECTED_COLUMNS = ("vrf", "prefix", "in_bgp")
_BGP_COLUMNS = ("prefix", "next_hop")


class _Table:
    """A table read from CSV (every column as text) or Parquet, with row → location."""

    def __init__(self, path: Path, required: tuple[str, ...]) -> None:
        self.path = path
        self.csv = path.suffix != ".parquet"
        if not path.is_file():
            msg = f"{path}: no such file"
            raise RoutingError(msg)
        try:
            if self.csv:
                with path.open(encoding="utf-8") as fh:
                    header = [h.strip().strip('"') for h in fh.readline().strip().split(",")]
                convert = pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in header},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                )
                self.table = pacsv.read_csv(path, convert_options=convert)
            else:
                self.table = pq.read_table(path)
        except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as exc:
            line = _bad_csv_line(path) if self.csv else 0
            where = f"{path}:{line}" if line else str(path)
            msg = f"{where}: unreadable table: {str(exc).splitlines()[0]}"
            raise RoutingError(msg) from None
        missing = [c for c in required if c not in self.table.column_names]
        if missing:
            msg = f"{self.where(-1)}: missing column(s) {', '.join(missing)}"
            raise RoutingError(msg)

    def where(self, row: int) -> str:
        """``file:line`` of a 0-based data row (-1 = the header)."""
        if self.csv:
            return f"{self.path}:{row + 2}"
        return f"{self.path}: row {row + 1}" if row >= 0 else str(self.path)

    def has(self, name: str) -> bool:
        return name in self.table.column_names

    def text(self, name: str) -> pa.Array:
        col = self.table.column(name).combine_chunks()
        return pc.fill_null(pc.cast(col, pa.string()), "")

    def fail(self, row: int, column: str, message: str) -> RoutingError:
        value = self.text(column)[row].as_py()
        msg = f"{self.where(row)}: {column} {value!r}: {message}"
        return RoutingError(msg)

    def ints(self, name: str, *, default: int | None = None) -> npt.NDArray[np.int64]:
        if not self.has(name):
            if default is None:
                msg = f"{self.where(-1)}: missing column {name}"
                raise RoutingError(msg)
            return np.full(self.table.num_rows, default, dtype=np.int64)
        col = self.table.column(name)
        if pa.types.is_integer(col.type):
            return np.asarray(pc.fill_null(col, 0).to_numpy(), dtype=np.int64)
        text = self.text(name)
        ok = pc.match_substring_regex(text, _INT).to_numpy(zero_copy_only=False)
        if not ok.all():
            raise self.fail(int(np.argmin(ok)), name, "not an integer")
        return np.asarray(pc.cast(text, pa.int64()).to_numpy(), dtype=np.int64)

    def marks(self, name: str) -> npt.NDArray[np.int8]:
        """A true/false/empty column as 1/0/-1 (-1 throughout when absent)."""
        n = self.table.num_rows
        if not self.has(name):
            return np.full(n, -1, dtype=np.int8)
        col = self.table.column(name)
        if pa.types.is_boolean(col.type):
            b = col.combine_chunks()
            valid = pc.is_valid(b).to_numpy(zero_copy_only=False)
            vals = pc.fill_null(b, False).to_numpy(zero_copy_only=False)
            return np.where(valid, vals.astype(np.int8), -1).astype(np.int8)
        text = pc.utf8_lower(self.text(name))
        t = pc.equal(text, "true").to_numpy(zero_copy_only=False)
        f = pc.equal(text, "false").to_numpy(zero_copy_only=False)
        e = pc.equal(text, "").to_numpy(zero_copy_only=False)
        ok = t | f | e
        if not ok.all():
            raise self.fail(int(np.argmin(ok)), name, "not true/false")
        return np.where(t, 1, np.where(f, 0, -1)).astype(np.int8)

    def check(self, name: str, pattern: str, what: str, *, empty_ok: bool = False) -> pa.Array:
        text = self.text(name)
        ok = pc.match_substring_regex(text, pattern).to_numpy(zero_copy_only=False)
        if empty_ok:
            ok |= pc.equal(text, "").to_numpy(zero_copy_only=False)
        if not ok.all():
            raise self.fail(int(np.argmin(ok)), name, f"not {what}")
        return text

    def codes(self, name: str) -> tuple[npt.NDArray[np.int32], list[str]]:
        """Dictionary codes of a text column (``""`` → -1) and the distinct values."""
        n = self.table.num_rows
        if not self.has(name):
            return np.full(n, -1, dtype=np.int32), []
        enc = pc.dictionary_encode(self.text(name))
        values: list[str] = enc.dictionary.to_pylist()
        idx = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int32)
        if "" in values:
            blank = values.index("")
            idx = np.where(idx == blank, -1, np.where(idx > blank, idx - 1, idx)).astype(np.int32)
            values = values[:blank] + values[blank + 1 :]
        return idx, values


def _bad_csv_line(path: Path) -> int:
    """1-based line of the first CSV line whose field count differs from the header's."""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            width = fh.readline().count(",")
            for number, line in enumerate(fh, start=2):
                if line.count(",") != width:
                    return number
    except OSError:
        return 0
    return 0


def parse_time_ms(text: str) -> int:
    """Epoch milliseconds of an ISO 8601 time (``Z`` or an offset; naive = UTC)."""
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def read_rd_table(path: Path) -> RdTable:
    """A PE's RD table (``rd.csv``): ifIndex → VRF → RD, route targets."""
    t = _Table(path, _RD_COLUMNS)
    if_index = t.ints("if_index")
    rd = t.check("rd", _RD, "a route distinguisher ASN:n or IP:n", empty_ok=True).to_pylist()
    vrf = t.text("vrf").to_pylist()
    for i, (v, r) in enumerate(zip(vrf, rd, strict=True)):
        if v and not r:
            msg = f"{t.where(i)}: VRF {v!r} has no RD"
            raise RoutingError(msg)
        if r and not v:
            msg = f"{t.where(i)}: RD {r!r} without a VRF"
            raise RoutingError(msg)
    seen: dict[int, int] = {}
    for i, x in enumerate(if_index.tolist()):
        if x in seen:
            msg = f"{t.where(i)}: if_index {x} repeated (first at {t.where(seen[x])})"
            raise RoutingError(msg)
        seen[x] = i
    by_vrf: dict[str, str] = {}
    for i, (v, r) in enumerate(zip(vrf, rd, strict=True)):
        if v and by_vrf.setdefault(v, r) != r:
            msg = f"{t.where(i)}: VRF {v!r} has RD {r!r} here and {by_vrf[v]!r} above"
            raise RoutingError(msg)
    if t.has("vrf_id"):
        vrf_id = t.ints("vrf_id", default=0)
    else:
        numbers = {v: k + 1 for k, v in enumerate(dict.fromkeys(x for x in vrf if x))}
        vrf_id = np.array([numbers.get(v, 0) for v in vrf], dtype=np.int64)
    return RdTable(
        if_index=if_index,
        interface=t.text("interface").to_pylist(),
        vrf=vrf,
        rd=rd,
        import_rts=[frozenset(x.split()) for x in t.text("import_rts").to_pylist()],
        export_rts=[frozenset(x.split()) for x in t.text("export_rts").to_pylist()],
        vrf_id=vrf_id,
        file=str(path),
    )


def read_connected_table(path: Path) -> ConnectedTable:
    """A PE's connected/static prefixes per VRF, with whether BGP also carries them."""
    t = _Table(path, _CONNECTED_COLUMNS)
    p = parse_prefixes(t.text("prefix"))
    if p.bad.any():
        i = int(np.argmax(p.bad))
        raise t.fail(i, "prefix", p.why[i] or "not a prefix")
    in_bgp = t.marks("in_bgp")
    return ConnectedTable(
        vrf=t.text("vrf").to_pylist(),
        family=p.family,
        hi=p.hi,
        lo=p.lo,
        length=p.length,
        in_bgp=in_bgp == 1,
        file=str(path),
    )


def read_bgp_table(path: Path, *, vpn: bool) -> BgpTable:
    """A BGP table: VPN paths (``rd`` column, route targets) or global paths."""
    required = ("rd", *_BGP_COLUMNS) if vpn else _BGP_COLUMNS
    t = _Table(path, required)
    p = parse_prefixes(t.text("prefix"))
    if p.bad.any():
        i = int(np.argmax(p.bad))
        raise t.fail(i, "prefix", p.why[i] or "not a prefix")
    nh = parse_addresses(t.text("next_hop"))
    if nh.bad.any():
        i = int(np.argmax(nh.bad))
        raise t.fail(i, "next_hop", nh.why[i] or "not an address")
    if vpn:
        t.check("rd", _RD, "a route distinguisher ASN:n or IP:n")
    return BgpTable.from_parsed(
        p,
        nh,
        rd=t.codes("rd") if vpn else t.codes("__none__"),
        route_targets=t.codes("route_targets"),
        vrf=t.codes("vrf"),
        originator=t.codes("originator"),
        local_pref=t.ints("local_pref", default=BGP_DEFAULTS["local_pref"]),
        med=t.ints("med", default=BGP_DEFAULTS["med"]),
        as_path_len=t.ints("as_path_len", default=BGP_DEFAULTS["as_path_len"]),
        best=t.marks("best"),
        multipath=t.marks("multipath"),
        file=str(path),
    )


def find_routing_dir(directory: Path) -> Path:
    """The directory holding ``manifest.json``: ``DIR/routing`` or ``DIR`` itself."""
    for candidate in (directory / "routing", directory):
        if (candidate / "manifest.json").is_file():
            return candidate
    msg = f"{directory}: no routing/manifest.json or manifest.json"
    raise RoutingError(msg)


def _manifest(routing: Path) -> dict[str, Any]:
    path = routing / "manifest.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        msg = f"{path}:{exc.lineno}: not JSON: {exc.msg}"
        raise RoutingError(msg) from None
    if not isinstance(doc, dict) or doc.get("format") != ROUTING_FORMAT:
        msg = f"{path}:1: format is not {ROUTING_FORMAT!r}"
        raise RoutingError(msg)
    return doc


def _time(doc: dict[str, Any], default: str, where: str) -> int:
    text = doc.get("taken_at", default)
    try:
        return parse_time_ms(str(text))
    except ValueError:
        msg = f"{where}: taken_at {text!r} is not an ISO 8601 time"
        raise RoutingError(msg) from None


def _load_config(directory: Path) -> NetworkConfig:
    from flowmatrix.config.xml import read_config

    for candidate in (directory / "network.xml", directory.parent / "network.xml"):
        if candidate.is_file():
            return read_config(candidate)
    msg = f"{directory}: no network.xml next to the routing tables; pass the configuration"
    raise RoutingError(msg)


def read_native(
    directory: Path, config: NetworkConfig | None = None, *, pes: list[str] | None = None
) -> RoutingState:
    """Every table a native routing directory holds, as a :class:`RoutingState`.

    ``directory`` is a network directory (with ``network.xml`` and
    ``routing/``) or the routing directory itself; ``pes`` limits which PEs'
    tables are read.
    """
    routing = find_routing_dir(directory)
    doc = _manifest(routing)
    where = str(routing / "manifest.json")
    default = str(doc.get("taken_at", ""))
    if config is None:
        config = _load_config(directory if directory != routing else routing.parent)
    state = RoutingState(config)
    rr = doc.get("route_reflector")
    if isinstance(rr, dict):
        at = _time(rr, default, where)
        vpn = read_bgp_table(routing / rr["vpn"], vpn=True) if rr.get("vpn") else BgpTable.empty()
        glob = (
            read_bgp_table(routing / rr["global"], vpn=False)
            if rr.get("global")
            else BgpTable.empty()
        )
        state.add_rr(RrTables(at, vpn, glob))
    entries = doc.get("pes", {})
    if not isinstance(entries, dict):
        msg = f"{where}: pes is not an object"
        raise RoutingError(msg)
    for name, entry in entries.items():
        if pes is not None and name not in pes:
            continue
        for version in entry if isinstance(entry, list) else [entry]:
            state.add_pe(_pe_tables(routing, name, version, default, where))
    return state


def _pe_tables(
    routing: Path, name: str, entry: dict[str, Any], default: str, where: str
) -> PeTables:
    for key in ("rd", "connected"):
        if key not in entry:
            msg = f"{where}: pe {name!r} has no {key!r} file"
            raise RoutingError(msg)
    connected = read_connected_table(routing / entry["connected"])
    bgp = read_bgp_table(routing / entry["bgp"], vpn=True) if entry.get("bgp") else None
    glob = read_bgp_table(routing / entry["global"], vpn=False) if entry.get("global") else None
    return PeTables(
        pe=name,
        taken_at_ms=_time(entry, default, where),
        rd=read_rd_table(routing / entry["rd"]),
        connected=connected,
        bgp=bgp,
        global_bgp=glob,
    )


def validate_native(directory: Path, config: NetworkConfig | None = None) -> list[str]:
    """One line per problem of a native routing directory (empty when it is usable).

    Each file is checked on its own, so one bad file does not hide another;
    then next hops that map to no PE and PEs the configuration does not know
    are reported.
    """
    problems: list[str] = []
    try:
        routing = find_routing_dir(directory)
        doc = _manifest(routing)
    except RoutingError as exc:
        return [str(exc)]
    where = str(routing / "manifest.json")
    default = str(doc.get("taken_at", ""))
    found = doc.get("route_reflector")
    rr: dict[str, Any] = found if isinstance(found, dict) else {}
    for key, vpn in (("vpn", True), ("global", False)):
        if rr.get(key):
            try:
                read_bgp_table(routing / rr[key], vpn=vpn)
            except RoutingError as exc:
                problems.append(str(exc))
    names: list[str] = []
    for name, entry in (doc.get("pes") or {}).items():
        names.append(name)
        for version in entry if isinstance(entry, list) else [entry]:
            try:
                _time(version, default, where)
                for key, reader in (("rd", read_rd_table), ("connected", read_connected_table)):
                    if key not in version:
                        problems.append(f"{where}: pe {name!r} has no {key!r} file")
                        continue
                    try:
                        reader(routing / version[key])
                    except RoutingError as exc:
                        problems.append(str(exc))
                for key, vpn in (("bgp", True), ("global", False)):
                    if version.get(key):
                        try:
                            read_bgp_table(routing / version[key], vpn=vpn)
                        except RoutingError as exc:
                            problems.append(str(exc))
            except RoutingError as exc:
                problems.append(str(exc))
    if problems:
        return problems
    try:
        state = read_native(directory, config)
    except FlowmatrixError as exc:
        return [str(exc)]
    known = {pe.name for pe in state.config.pes}
    problems += [f"{where}: pe {n!r} is not in the configuration" for n in names if n not in known]
    from flowmatrix.routing.resolve import unknown_next_hops

    problems += unknown_next_hops(state)
    return problems


# --- writing -------------------------------------------------------------------------------------


def iso_time(ms: int) -> str:
    """Unix milliseconds as the manifest's ISO 8601 UTC text (``…Z``), exact to the ms."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


def _names(codes: npt.NDArray[np.integer], values: Sequence[str]) -> pa.Array:
    """Codes into ``values`` as text, -1 as ``""``."""
    return pa.array([*values, ""], pa.string()).take(
        pa.array(np.where(codes >= 0, codes, len(values)))
    )


def _marks(values: npt.NDArray[np.int8]) -> pa.Array:
    """1/0/-1 as true/false/null."""
    return pa.array(values == 1, pa.bool_(), mask=values < 0)


def bgp_table_arrow(t: BgpTable, *, vpn: bool) -> pa.Table:
    """A BGP table as the columns :func:`read_bgp_table` reads (``rd`` only when ``vpn``)."""
    columns: dict[str, pa.Array] = {}
    if vpn:
        columns["rd"] = _names(t.rd, t.rds)
    columns["prefix"] = format_prefixes(t.family, t.hi, t.lo, t.length)
    columns["next_hop"] = format_addresses(t.nh_family, t.nh_hi, t.nh_lo)
    columns["route_targets"] = _names(t.rts, [" ".join(sorted(x)) for x in t.rt_sets])
    columns["local_pref"] = pa.array(t.local_pref, pa.int64())
    columns["med"] = pa.array(t.med, pa.int64())
    columns["as_path_len"] = pa.array(t.as_path_len, pa.int64())
    columns["originator"] = _names(t.originator, t.originators)
    if (t.vrf >= 0).any():
        columns["vrf"] = _names(t.vrf, t.vrfs)
    if (t.best >= 0).any():
        columns["best"] = _marks(t.best)
    if (t.multipath >= 0).any():
        columns["multipath"] = _marks(t.multipath)
    return pa.table(columns)


def rd_table_arrow(t: RdTable) -> pa.Table:
    """An RD table as the columns :func:`read_rd_table` reads."""
    return pa.table(
        {
            "if_index": pa.array(t.if_index, pa.int64()),
            "interface": pa.array(t.interface, pa.string()),
            "vrf": pa.array(t.vrf, pa.string()),
            "rd": pa.array(t.rd, pa.string()),
            "import_rts": pa.array([" ".join(sorted(x)) for x in t.import_rts], pa.string()),
            "export_rts": pa.array([" ".join(sorted(x)) for x in t.export_rts], pa.string()),
            "vrf_id": pa.array(t.vrf_id, pa.int64()),
        }
    )


def connected_table_arrow(t: ConnectedTable) -> pa.Table:
    """Connected and static prefixes as the columns :func:`read_connected_table` reads."""
    return pa.table(
        {
            "vrf": pa.array(t.vrf, pa.string()),
            "prefix": format_prefixes(t.family, t.hi, t.lo, t.length),
            "in_bgp": pa.array(t.in_bgp, pa.bool_()),
        }
    )


def _write(table: pa.Table, path: Path) -> str:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path.name


def write_native(
    state: RoutingState,
    directory: Path,
    *,
    pes: Sequence[str] | None = None,
    source: str = "flowmatrix",
) -> Path:
    """Write ``state`` as a native routing directory; returns its ``manifest.json``.

    Every version of each PE (of ``pes``, default all) and the newest route
    reflector version are written as Parquet tables; :func:`read_native`
    reads back the same tables and times. The manifest is written last.

    Examples
    --------
    >>> import tempfile
    >>> from flowmatrix.synth import generate_network, write_network
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = write_network(generate_network("tiny", seed=1), Path(tmp, "net"))
    ...     state = read_native(Path(tmp, "net"))
    ...     _ = write_native(state, Path(tmp, "copy"), pes=["par-pe1"])
    ...     again = read_native(Path(tmp, "copy"), state.config)
    >>> list(again.pe_versions), len(again.rr_versions[0].vpn) == len(state.rr_versions[-1].vpn)
    (['par-pe1'], True)
    """
    directory.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"format": ROUTING_FORMAT, "source": source, "pes": {}}
    if state.rr_versions:
        rr = state.rr_versions[-1]
        manifest["taken_at"] = iso_time(rr.taken_at_ms)
        manifest["route_reflector"] = {
            "taken_at": iso_time(rr.taken_at_ms),
            "vpn": _write(bgp_table_arrow(rr.vpn, vpn=True), directory / "rr-vpn.parquet"),
            "global": _write(
                bgp_table_arrow(rr.global_bgp, vpn=False), directory / "rr-global.parquet"
            ),
        }
    chosen = list(state.pe_versions) if pes is None else [p for p in pes if p in state.pe_versions]
    for k, name in enumerate(chosen):  # per PE and version: a few files each
        entries = []
        for v, tables in enumerate(state.pe_versions[name]):
            stem = f"pe{k}-v{v}"
            entry: dict[str, Any] = {
                "taken_at": iso_time(tables.taken_at_ms),
                "rd": _write(rd_table_arrow(tables.rd), directory / f"{stem}-rd.parquet"),
                "connected": _write(
                    connected_table_arrow(tables.connected), directory / f"{stem}-connected.parquet"
                ),
            }
            if tables.bgp is not None:
                entry["bgp"] = _write(
                    bgp_table_arrow(tables.bgp, vpn=True), directory / f"{stem}-vpn.parquet"
                )
            if tables.global_bgp is not None:
                entry["global"] = _write(
                    bgp_table_arrow(tables.global_bgp, vpn=False),
                    directory / f"{stem}-global.parquet",
                )
            entries.append(entry)
        manifest["pes"][name] = entries
    path = directory / "manifest.json"
    tmp = directory / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
