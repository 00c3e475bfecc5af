"""Read router CLI captures (IOS/IOS-XE, IOS-XR, Junos) as RD and BGP VPN tables through TextFSM.

* ``read_cli_rd_table``: ``show vrf detail`` or ``show vrf`` (IOS), ``show vrf
  all detail`` (IOS-XR), both with ntc-templates, or ``show route instance
  detail`` (Junos, our template) → VRF, RD, interfaces, route targets;
  interfaces get their ifIndex from ``read_cli_if_index`` (``show snmp mib
  ifmib ifindex`` on IOS, ``show snmp interface`` on IOS-XR, ``show snmp mib
  walk ifName`` on Junos; our templates) or a mapping.
* ``read_cli_bgp_vpn``: ``show bgp vpnv4 unicast all`` (IOS), ``show bgp
  vpnv4 unicast`` (IOS-XR) or ``show route table X.inet.0 detail`` (Junos) →
  the PE's own VPN table. ntc-templates' BGP templates skip (IOS) or reject
  (IOS-XR) the ``Route Distinguisher:`` lines and none reads Junos route
  detail, so our own templates (``templates/*.textfsm``) do.

The text is fed to the state machine one line at a time so that every row
and every rejected line is known by its line number: each problem is a
:class:`~flowmatrix.errors.RoutingError` naming ``file:line``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import textfsm  # type: ignore[import-untyped]

from flowmatrix.errors import RoutingError
from flowmatrix.routing.tables import BgpTable, RdTable, parse_addresses, parse_prefixes

__all__ = ["PLATFORMS", "Platform", "read_cli_bgp_vpn", "read_cli_if_index", "read_cli_rd_table"]

Platform = Literal["cisco_ios", "cisco_xr", "juniper_junos"]
#: platforms whose CLI text is read
PLATFORMS: tuple[Platform, ...] = ("cisco_ios", "cisco_xr", "juniper_junos")

_OURS = "flowmatrix.routing"
_NTC = "ntc_templates"
#: (package, template) per platform and command
_BGP_TEMPLATE = (_OURS, "cisco_show_bgp_vpnv4_unicast_all.textfsm")
_JUNOS_ROUTE_TEMPLATE = (_OURS, "juniper_junos_show_route_table_detail.textfsm")
_VRF_TEMPLATES: dict[str, tuple[str, str]] = {
    "cisco_ios detail": (_NTC, "cisco_ios_show_vrf_detail.textfsm"),
    "cisco_ios brief": (_NTC, "cisco_ios_show_vrf.textfsm"),
    "cisco_xr detail": (_NTC, "cisco_xr_show_vrf_all_detail.textfsm"),
    "juniper_junos detail": (_OURS, "juniper_junos_show_route_instance_detail.textfsm"),
}
_IF_INDEX_TEMPLATES: dict[str, tuple[str, str]] = {
    "cisco_ios": (_OURS, "cisco_ios_show_snmp_mib_ifmib_ifindex.textfsm"),
    "cisco_xr": (_OURS, "cisco_xr_show_snmp_interface.textfsm"),
    "juniper_junos": (_OURS, "juniper_junos_show_snmp_mib_walk_ifname.textfsm"),
}
_COMMANDS = {
    "bgp cisco_ios": "show bgp vpnv4 unicast all",
    "bgp cisco_xr": "show bgp vpnv4 unicast",
    "bgp juniper_junos": "show route table X.inet.0 detail",
    "vrf cisco_ios": "show vrf detail / show vrf",
    "vrf cisco_xr": "show vrf all detail",
    "vrf juniper_junos": "show route instance detail",
    "ifindex cisco_ios": "show snmp mib ifmib ifindex",
    "ifindex cisco_xr": "show snmp interface",
    "ifindex juniper_junos": "show snmp mib walk ifName",
}
_NOT_SET = ("", "<not set>", "not set")
#: a path line whose prefix is too long: its next hop and attributes are on the next line
_WRAPPED = re.compile(r"^\s?[^\d\s](?:[^\d\s]| (?=[^\d\s]))*\s*\d+\.\d+\.\d+\.\d+/\d+\s*$")
_IOS_VRF_BRIEF = re.compile(r"^\s*Name\s+Default RD\s+Protocols\s+Interfaces", re.MULTILINE)
_INTERFACE = re.compile(r"^([A-Za-z][A-Za-z-]*)(\S*)$")
#: the first line of a Junos route entry ("*BGP    Preference: 170/-101")
_JUNOS_ENTRY = re.compile(r"^\s+\*?[\w-]+\s+Preference:")

I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]


def _source(source: str | Path, file: str, default: str) -> tuple[str, str]:
    if isinstance(source, Path):
        return source.read_text(encoding="utf-8", errors="replace"), file or str(source)
    return source, file or default


def _check_platform(platform: str) -> None:
    if platform not in PLATFORMS:
        msg = f"platform {platform!r} not read; one of {', '.join(PLATFORMS)}"
        raise RoutingError(msg)


def _fsm(where: tuple[str, str]) -> Any:
    package, name = where
    path = files(package) / "templates" / name
    return textfsm.TextFSM(io.StringIO(path.read_text(encoding="utf-8")))


def _parse(
    where: tuple[str, str],
    lines: list[str],
    origin: list[int],
    file: str,
    command: str,
    *,
    wrapped: bool = False,
) -> list[tuple[int, dict[str, Any]]]:
    """Records of ``lines`` with the line number each was recorded at; rejected lines raise."""
    fsm = _fsm(where)
    header = list(fsm.header)
    out: list[tuple[int, dict[str, Any]]] = []
    seen = 0
    pending = 0  # line of a wrapped prefix whose path has not come yet
    for line, number in zip(lines, origin, strict=True):
        try:
            result = fsm.ParseText(line + "\n", eof=False)
        except textfsm.TextFSMError:
            msg = f"{file}:{number}: not {command} output: {line.strip()!r}"
            raise RoutingError(msg) from None
        if len(result) == seen and pending:
            msg = f"{file}:{pending}: prefix without its path on the next line"
            raise RoutingError(msg)
        pending = number if wrapped and _WRAPPED.match(line) else 0
        out.extend((number, dict(zip(header, r, strict=True))) for r in result[seen:])
        seen = len(result)
    if pending:
        msg = f"{file}:{pending}: the capture ends after a prefix, before its path"
        raise RoutingError(msg)
    result = fsm.ParseText("", eof=True)
    out.extend(
        (origin[-1] if origin else 1, dict(zip(header, r, strict=True))) for r in result[seen:]
    )
    return out


def _lines(text: str) -> tuple[list[str], list[int]]:
    lines = text.splitlines()
    return lines, list(range(1, len(lines) + 1))


def _codes(values: list[str]) -> tuple[np.ndarray, list[str]]:
    distinct = list(dict.fromkeys(v for v in values if v))
    index = {v: i for i, v in enumerate(distinct)}
    return np.array([index.get(v, -1) for v in values], dtype=np.int32), distinct


def _as_path_len(path: str) -> int:
    # an AS_SET ({...}) counts as one AS in the decision (RFC 4271 9.1.2.2)
    return len(re.sub(r"\{[^}]*\}", "{}", path).split())


@dataclass
class _Paths:
    """Columns of the paths read, one entry per path, with the line each came from."""

    n: int
    line: list[int] = field(default_factory=list)
    prefix: list[str] = field(default_factory=list)
    next_hop: list[str] = field(default_factory=list)
    rd: list[str] = field(default_factory=list)
    vrf: list[str] = field(default_factory=list)
    local_pref: I64 = field(init=False)
    med: I64 = field(init=False)
    as_path_len: I64 = field(init=False)
    best: I8 = field(init=False)
    multipath: I8 = field(init=False)

    def __post_init__(self) -> None:
        self.local_pref = np.full(self.n, 100, dtype=np.int64)
        self.med = np.zeros(self.n, dtype=np.int64)
        self.as_path_len = np.zeros(self.n, dtype=np.int64)
        self.best = np.zeros(self.n, dtype=np.int8)
        self.multipath = np.zeros(self.n, dtype=np.int8)


def read_cli_bgp_vpn(source: str | Path, *, platform: Platform, file: str = "") -> BgpTable:
    """A PE's own VPN table from ``show bgp vpnv4 unicast all`` (IOS), ``show bgp vpnv4
    unicast`` (IOS-XR) or ``show route table X.inet.0 detail`` (Junos).

    Cisco: marks ``>`` best, ``m`` multipath; a path without ``*`` (not valid)
    is neither. Empty LocPrf reads 100, empty metric 0. Rows under ``Route
    Distinguisher: X (default for vrf V)`` belong to VRF ``V``. A path not
    learned over iBGP (no ``i`` code) under a local VRF's RD — locally
    originated (next hop 0.0.0.0) or learned from a CE — leaves through this
    PE, so its next hop is read as ``0.0.0.0``.

    Junos: rows of ``X.inet.0`` belong to VRF ``X`` (``bgp.l3vpn.0`` rows to
    none, their RD from the ``RD:prefix`` destination); the active entry
    (``*``) is best, no multipath marks; the ``Protocol next hop`` is the next
    hop, and an entry without one (Direct, Local, Static, BGP from a CE) is
    this PE's (``0.0.0.0``).
    """
    _check_platform(platform)
    text, file = _source(source, file, f"<{platform} bgp>")
    command = _COMMANDS[f"bgp {platform}"]
    lines, origin = _lines(text)
    if platform == "juniper_junos":
        records = _parse(_JUNOS_ROUTE_TEMPLATE, lines, origin, file, command)
        # an entry is recorded when the next begins: name it by its own first line
        starts = [k for k, x in zip(origin, lines, strict=True) if _JUNOS_ENTRY.match(x)]
        if len(starts) != len(records):
            msg = f"{file}: {len(starts)} route entries but {len(records)} read"
            raise RoutingError(msg)
        records = [(k, r) for k, (_, r) in zip(starts, records, strict=True)]
    else:
        records = _parse(_BGP_TEMPLATE, lines, origin, file, command, wrapped=True)
    if not records:
        msg = f"{file}:1: no BGP path found (is this {command} output?)"
        raise RoutingError(msg)
    paths = _Paths(len(records))
    if platform == "juniper_junos":
        _junos_paths(records, paths, file)
    else:
        _cisco_paths(records, paths, file)
    return _bgp_table(paths, file)


def _cisco_paths(records: list[tuple[int, dict[str, Any]]], paths: _Paths, file: str) -> None:
    by_vrf: dict[str, str] = {}
    for i, (number, r) in enumerate(records):
        if not r["RD"]:
            msg = f"{file}:{number}: path {r['NETWORK']} before any Route Distinguisher line"
            raise RoutingError(msg)
        vrf, rd = r["RD_VRF"], r["RD"]
        if vrf and by_vrf.setdefault(vrf, rd) != rd:
            msg = f"{file}:{number}: VRF {vrf!r} has RD {rd} here and {by_vrf[vrf]} above"
            raise RoutingError(msg)
        status = r["STATUS"]
        internal = "i" in status
        paths.line.append(number)
        paths.prefix.append(r["NETWORK"])
        paths.next_hop.append(r["NEXT_HOP"] if internal or not r["RD_VRF"] else "0.0.0.0")
        paths.rd.append(r["RD"])
        paths.vrf.append(r["RD_VRF"])
        if r["LOCAL_PREF"]:
            paths.local_pref[i] = int(r["LOCAL_PREF"])
        if r["METRIC"]:
            paths.med[i] = int(r["METRIC"])
        paths.as_path_len[i] = _as_path_len(r["AS_PATH"])
        valid = "*" in status
        paths.best[i] = valid and ">" in status
        paths.multipath[i] = valid and "m" in status


def _junos_paths(records: list[tuple[int, dict[str, Any]]], paths: _Paths, file: str) -> None:
    for i, (number, r) in enumerate(records):
        table, destination = r["TABLE"], r["DESTINATION"]
        rd = r["RD"]
        if table == "bgp.l3vpn.0":
            vrf = ""
            rd, _, destination = destination.rpartition(":")
        elif table.endswith(".inet.0") and table != "inet.0":
            vrf = table.removesuffix(".inet.0")
        else:
            msg = (
                f"{file}:{number}: table {table or '(none)'!r} not read (X.inet.0, bgp.l3vpn.0 are)"
            )
            raise RoutingError(msg)
        if not r["AS_PATH"]:
            msg = (
                f"{file}:{number}: {r['PROTOCOL']} entry of {destination} without its AS path line"
            )
            raise RoutingError(msg)
        paths.line.append(number)
        paths.prefix.append(destination)
        paths.next_hop.append(r["PROTOCOL_NEXT_HOP"] or "0.0.0.0")
        paths.rd.append(rd)
        paths.vrf.append(vrf)
        if r["LOCAL_PREF"]:
            paths.local_pref[i] = int(r["LOCAL_PREF"])
        if r["MED"]:
            paths.med[i] = int(r["MED"])
        # "65020 {65021 65022} I (Originator)": drop the notes and the origin code
        as_path = re.sub(r"\([^)]*\)", " ", r["AS_PATH"]).split()
        if as_path and as_path[-1] in ("I", "E", "?"):
            as_path.pop()
        paths.as_path_len[i] = _as_path_len(" ".join(as_path))
        paths.best[i] = r["ACTIVE"] == "*"


def _bgp_table(paths: _Paths, file: str) -> BgpTable:
    p = parse_prefixes(paths.prefix)
    nh = parse_addresses(paths.next_hop)
    if p.bad.any():
        i = int(np.argmax(p.bad))
        msg = f"{file}:{paths.line[i]}: prefix {paths.prefix[i]!r}: {p.why[i]}"
        raise RoutingError(msg)
    if nh.bad.any():
        i = int(np.argmax(nh.bad))
        msg = f"{file}:{paths.line[i]}: next hop {paths.next_hop[i]!r}: {nh.why[i]}"
        raise RoutingError(msg)
    rd_codes, rds = _codes(paths.rd)
    vrf_codes, vrfs = _codes(paths.vrf)
    return BgpTable(
        family=p.family,
        hi=p.hi,
        lo=p.lo,
        length=p.length,
        rd=rd_codes,
        rds=rds,
        nh_family=nh.family,
        nh_hi=nh.hi,
        nh_lo=nh.lo,
        rts=np.full(paths.n, -1, dtype=np.int32),
        rt_sets=[],
        local_pref=paths.local_pref,
        med=paths.med,
        as_path_len=paths.as_path_len,
        best=paths.best,
        multipath=paths.multipath,
        originator=np.full(paths.n, -1, dtype=np.int32),
        originators=[],
        vrf=vrf_codes,
        vrfs=vrfs,
        file=file,
    )


def read_cli_if_index(source: str | Path, *, platform: Platform, file: str = "") -> dict[str, int]:
    """Interface name → ifIndex from ``show snmp mib ifmib ifindex`` (IOS) / ``show snmp interface``
    (IOS-XR)."""
    _check_platform(platform)
    text, file = _source(source, file, f"<{platform} ifindex>")
    command = _COMMANDS[f"ifindex {platform}"]
    lines, origin = _lines(text)
    records = _parse(_IF_INDEX_TEMPLATES[platform], lines, origin, file, command)
    if not records:
        msg = f"{file}:1: no interface found (is this {command} output?)"
        raise RoutingError(msg)
    out: dict[str, int] = {}
    for number, r in records:
        name = r["INTERFACE"]
        if name in out:
            msg = f"{file}:{number}: interface {name} listed twice"
            raise RoutingError(msg)
        out[name] = int(r["IFINDEX"])
    return out


def _split_columns(text: str) -> tuple[list[str], list[int]]:
    """IOS prints several interfaces / route targets per line; ntc's template reads one."""
    lines: list[str] = []
    origin: list[int] = []
    in_interfaces = False
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if re.match(r"^\s*Interfaces:\s*$", line):
            in_interfaces = True
        elif not line.startswith(" ") or not stripped:
            in_interfaces = False
        words = stripped.split()
        split = len(words) > 1 and (
            (in_interfaces and stripped != "Interfaces:") or all(w.startswith("RT:") for w in words)
        )
        if split:
            indent = line[: len(line) - len(line.lstrip())]
            lines += [indent + w for w in words]
            origin += [number] * len(words)
        else:
            lines.append(line)
            origin.append(number)
    return lines, origin


def _targets(value: list[str] | str) -> frozenset[str]:
    """Route targets without their ``RT:`` (Cisco) or ``target:`` (Junos) tag."""
    items = value.split() if isinstance(value, str) else value
    return frozenset(t.removeprefix("RT:").removeprefix("target:") for t in items)


def _match(name: str, if_index: Mapping[str, int], by_rest: dict[str, list[str]]) -> str | None:
    """The full name ``name`` abbreviates (``Gi0/0/1.100`` → ``GigabitEthernet0/0/1.100``)."""
    if name in if_index:
        return name
    m = _INTERFACE.match(name)
    if not m:
        return None
    kind, rest = m.group(1).lower(), m.group(2)
    got = [full for full in by_rest.get(rest, []) if full.lower().startswith(kind)]
    return got[0] if len(got) == 1 else None


def read_cli_rd_table(
    source: str | Path,
    *,
    platform: Platform,
    if_index: Mapping[str, int] | str | Path,
    file: str = "",
) -> RdTable:
    """A PE's RD table from ``show vrf detail`` / ``show vrf`` (IOS) or ``show vrf all detail``
    (IOS-XR).

    ``if_index`` maps interface names to ifIndex: a mapping, or the text (or
    path) of the platform's SNMP interface listing (:func:`read_cli_if_index`).
    Abbreviated names (``Gi0/0/1.100``) match the full ones. VRFs without an RD
    (not VPN VRFs, e.g. management) are left out; ``show vrf`` gives no route
    targets (use the PE's own BGP table with it).
    """
    _check_platform(platform)
    text, file = _source(source, file, f"<{platform} vrf>")
    command = _COMMANDS[f"vrf {platform}"]
    index = (
        if_index
        if isinstance(if_index, Mapping)
        else read_cli_if_index(if_index, platform=platform)
    )
    brief = platform == "cisco_ios" and bool(_IOS_VRF_BRIEF.search(text))
    lines, origin = _split_columns(text) if platform == "cisco_ios" and not brief else _lines(text)
    template = _VRF_TEMPLATES[f"{platform} {'brief' if brief else 'detail'}"]
    records = _parse(template, lines, origin, file, command)
    by_rest: dict[str, list[str]] = {}
    for full in index:
        m = _INTERFACE.match(full)
        if m:
            by_rest.setdefault(m.group(2), []).append(full)
    all_lines = text.splitlines()

    def line_of(word: str) -> int:
        pattern = re.compile(rf"(^|\s){re.escape(word)}(;|:|\s|$)")
        return next((k for k, x in enumerate(all_lines, start=1) if pattern.search(x)), 1)

    rows: list[tuple[int, str, str, str, frozenset[str], frozenset[str]]] = []
    seen: dict[int, str] = {}
    vrf_rd: dict[str, str] = {}
    for _, r in records:
        name = r.get("VRF") or r.get("NAME") or ""
        rd = r.get("RD") or r.get("DEFAULT_RD") or ""
        if not name or rd in _NOT_SET or r.get("TYPE", "vrf") != "vrf":
            continue
        if not re.match(r"^(\d+|\d+\.\d+\.\d+\.\d+):\d+$", rd):
            msg = f"{file}:{line_of(name)}: VRF {name}: RD {rd!r} is not ASN:n or IP:n"
            raise RoutingError(msg)
        if vrf_rd.setdefault(name, rd) != rd:
            msg = f"{file}:{line_of(name)}: VRF {name} listed twice with RDs {vrf_rd[name]}, {rd}"
            raise RoutingError(msg)
        imports = _targets(r.get("RT_IMPORT", []))
        exports = _targets(r.get("RT_EXPORT", []))
        for interface in r["INTERFACES"]:
            found = _match(interface, index, by_rest)
            if found is None:
                where = f"{file}:{line_of(interface)}"
                msg = f"{where}: interface {interface} (VRF {name}) has no ifIndex"
                raise RoutingError(msg)
            number = index[found]
            if number in seen:
                msg = (
                    f"{file}:{line_of(interface)}: interface {interface} in VRF {name} "
                    f"and VRF {seen[number]}"
                )
                raise RoutingError(msg)
            seen[number] = name
            rows.append((number, found, name, rd, imports, exports))
    if not rows:
        msg = f"{file}:1: no VRF with an RD and interfaces found (is this {command} output?)"
        raise RoutingError(msg)
    vrf_names = [r[2] for r in rows]
    numbers = {v: k + 1 for k, v in enumerate(dict.fromkeys(vrf_names))}
    return RdTable(
        if_index=np.array([r[0] for r in rows], dtype=np.int64),
        interface=[r[1] for r in rows],
        vrf=vrf_names,
        rd=[r[3] for r in rows],
        import_rts=[r[4] for r in rows],
        export_rts=[r[5] for r in rows],
        vrf_id=np.array([numbers[v] for v in vrf_names], dtype=np.int64),
        file=file,
    )
