"""Read gobgpd's JSON RIB dumps (``gobgp global rib -a vpnv4|vpnv6|ipv4|ipv6 -j``) as BGP tables.

The dump is an object keyed by ``"RD:prefix"`` (or ``"prefix"``), each a list
of paths; per path the prefix and RD are in ``nlri``, the next hop in the
MP_REACH attribute (type 14, ``nexthop``) or NEXT_HOP (type 3), route targets
in the extended communities (type 16, subtype 2), LOCAL_PREF in type 5,
MED in type 4 (``metric``), the AS path in type 2. ``gobgp vrf NAME rib -j``
marks no path best: a dump where no path is best is read with the marks
left unsaid, so the resolver runs the path decision itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flowmatrix.errors import RoutingError
from flowmatrix.routing.tables import BgpTable, bgp_from_rows

__all__ = ["read_gobgp_json"]

#: BGP path attribute type codes (RFC 4271, 4760), as gobgp prints them
_AS_PATH, _NEXT_HOP, _MED, _LOCAL_PREF, _EXT_COMMUNITIES, _MP_REACH = 2, 3, 4, 5, 16, 14
#: extended community subtype of a route target (RFC 4360)
_ROUTE_TARGET = 2


def _rd_text(rd: dict[str, Any]) -> str:
    return f"{rd.get('admin')}:{rd.get('assigned')}"


def _as_path_len(attr: dict[str, Any]) -> int:
    # an AS_SET (segment type 1) counts as one AS in the decision (RFC 4271 9.1.2.2)
    return sum(
        1 if seg.get("segment_type") == 1 else int(seg.get("num", len(seg.get("asns", []))))
        for seg in attr.get("as_paths", [])
    )


def read_gobgp_json(source: str | Path, *, file: str = "", vrf: str = "") -> BgpTable:
    """A :class:`BgpTable` from a gobgp ``-j`` RIB dump (text, or a path to a file).

    ``vrf`` labels every row as that VRF's (for ``gobgp vrf NAME rib -j``, whose
    keys carry the originating RD but whose NLRIs do not).
    """
    if isinstance(source, Path):
        file = file or str(source)
        text = source.read_text(encoding="utf-8")
    else:
        text = source
    file = file or "<gobgp>"
    try:
        doc = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        msg = f"{file}:{exc.lineno}: not JSON: {exc.msg}"
        raise RoutingError(msg) from None
    if not isinstance(doc, dict):
        msg = f"{file}:1: expected an object keyed by prefix"
        raise RoutingError(msg)
    rows: list[dict[str, object]] = []
    any_best = False
    for key, paths in doc.items():
        for path in paths:
            nlri = path.get("nlri", {})
            prefix = nlri.get("prefix")
            if not prefix:
                msg = f"{file}: {key}: path without an NLRI prefix"
                raise RoutingError(msg)
            row: dict[str, object] = {"prefix": prefix, "next_hop": "", "as_path_len": 0}
            if "rd" in nlri:
                row["rd"] = _rd_text(nlri["rd"])
            elif key.endswith(f":{prefix}") and len(key) > len(prefix) + 1:
                row["rd"] = key[: -len(prefix) - 1]
            if vrf:
                row["vrf"] = vrf
            rts: list[str] = []
            for attr in path.get("attrs", []):
                kind = attr.get("type")
                if kind in (_MP_REACH, _NEXT_HOP):
                    row["next_hop"] = attr.get("nexthop", "")
                elif kind == _LOCAL_PREF:
                    row["local_pref"] = int(attr.get("value", 100))
                elif kind == _MED:
                    row["med"] = int(attr.get("metric", 0))
                elif kind == _AS_PATH:
                    row["as_path_len"] = _as_path_len(attr)
                elif kind == _EXT_COMMUNITIES:
                    rts += [
                        str(c["value"])
                        for c in attr.get("value", [])
                        if c.get("subtype") == _ROUTE_TARGET and "value" in c
                    ]
            if not row["next_hop"]:
                msg = f"{file}: {key}: path without a next hop"
                raise RoutingError(msg)
            row["rts"] = " ".join(rts)
            row["best"] = bool(path.get("best", False))
            any_best |= bool(row["best"])
            rows.append(row)
    if not any_best:
        for row in rows:
            row["best"] = None
    return bgp_from_rows(rows, file=file)
