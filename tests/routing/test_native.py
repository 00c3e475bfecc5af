"""Native routing files: read, versioned, refused with file and line when bad."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowmatrix.cli import app
from flowmatrix.errors import RoutingError
from flowmatrix.routing import read_native, validate_native
from flowmatrix.routing.native import read_bgp_table, read_connected_table, read_rd_table


@pytest.fixture
def net(tiny_net: tuple[Path, Path], tmp_path: Path) -> Path:
    """A private copy of the tiny network, free to damage."""
    out = tmp_path / "net"
    shutil.copytree(tiny_net[0], out)
    return out


def _first_pe(net: Path) -> str:
    return sorted(json.loads((net / "routing" / "manifest.json").read_text())["pes"])[0]


def test_the_tiny_network_loads_every_pe_and_the_reflector(net: Path) -> None:
    state = read_native(net)
    manifest = json.loads((net / "routing" / "manifest.json").read_text())
    assert set(state.pe_versions) == set(manifest["pes"])
    assert len(state.rr_versions) == 1
    assert len(state.rr_versions[0].vpn) == manifest_rows(net / "routing" / "vpn.csv")
    assert validate_native(net) == []


def manifest_rows(path: Path) -> int:
    return len(path.read_text().splitlines()) - 1


@pytest.mark.parametrize(
    ("file", "column", "bad", "message"),
    [
        ("vpn.csv", 1, "10.0.0.300/24", "prefix '10.0.0.300/24'"),
        ("vpn.csv", 1, "10.0.0.1/24", "host bits set"),
        ("vpn.csv", 2, "not-an-address", "next_hop 'not-an-address'"),
        ("vpn.csv", 0, "65000-1", "not a route distinguisher"),
        ("vpn.csv", 4, "high", "local_pref 'high': not an integer"),
        ("vpn.csv", 8, "maybe", "best 'maybe': not true/false"),
        ("global.csv", 0, "2001:db8::/200", "prefix '2001:db8::/200'"),
    ],
)
def test_a_bad_value_is_refused_naming_file_and_line(
    net: Path, file: str, column: int, bad: str, message: str
) -> None:
    path = net / "routing" / file
    lines = path.read_text().splitlines()
    fields = lines[5].split(",")
    fields[column] = bad
    lines[5] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RoutingError, match=rf"{file}:6: .*{message}"):
        read_native(net)
    assert any(f"{file}:6:" in p for p in validate_native(net))


def test_a_truncated_file_is_refused_naming_its_last_line(net: Path) -> None:
    path = net / "routing" / "vpn.csv"
    text = path.read_text()
    cut = text[: len(text) // 2]
    cut = cut[: cut.rindex(",")]
    path.write_text(cut)
    line = cut.count("\n") + 1
    with pytest.raises(RoutingError, match=rf"vpn.csv:{line}: unreadable table"):
        read_bgp_table(path, vpn=True)


def test_missing_columns_and_files_are_refused(net: Path) -> None:
    pe = _first_pe(net)
    rd = net / "routing" / "pe" / pe / "rd.csv"
    lines = rd.read_text().splitlines()
    rd.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n")
    with pytest.raises(RoutingError, match=r"rd.csv:1: missing column\(s\) export_rts"):
        read_rd_table(rd)
    conn = net / "routing" / "pe" / pe / "connected.csv"
    conn.unlink()
    with pytest.raises(RoutingError, match=r"connected\.csv: no such file"):
        read_connected_table(conn)
    problems = validate_native(net)
    assert len(problems) == 2


def test_an_interface_listed_twice_in_the_rd_table_is_refused(net: Path) -> None:
    rd = net / "routing" / "pe" / _first_pe(net) / "rd.csv"
    lines = rd.read_text().splitlines()
    rd.write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(RoutingError, match=rf"rd.csv:{len(lines) + 1}: if_index .* repeated"):
        read_rd_table(rd)


def test_several_versions_of_a_pe_are_read_from_the_manifest(net: Path) -> None:
    manifest_path = net / "routing" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    pe = _first_pe(net)
    later = dict(manifest["pes"][pe], taken_at="2026-01-05T06:00:00Z")
    manifest["pes"][pe] = [manifest["pes"][pe], later]
    manifest_path.write_text(json.dumps(manifest))
    state = read_native(net)
    assert state.version_times(pe) == [1767571200000, 1767592800000]


def test_routing_commands_load_validate_and_show(net: Path) -> None:
    runner = CliRunner()
    loaded = runner.invoke(app, ["routing", "load", str(net)])
    assert loaded.exit_code == 0, loaded.output
    assert "route reflector: 1 version(s)" in loaded.output
    assert runner.invoke(app, ["routing", "validate", str(net)]).exit_code == 0
    pe = next(
        d.name
        for d in sorted((net / "routing" / "pe").iterdir())
        if any(line.split(",")[3] == "" for line in (d / "rd.csv").read_text().splitlines()[1:])
    )
    shown = runner.invoke(app, ["routing", "show", "--network", str(net), pe])
    assert shown.exit_code == 0, shown.output
    assert "(global)" in shown.output
    looked = runner.invoke(
        app, ["routing", "show", "--network", str(net), pe, "--lookup", "185.0.0.1"]
    )
    assert looked.exit_code == 0, looked.output
    assert "vrf=(global)" in looked.output
    assert "prefix=185.0.0.0/26" in looked.output
    assert "reason=bgp" in looked.output
    vrfs = runner.invoke(app, ["routing", "show", "--network", str(net), pe, "--json"])
    assert vrfs.exit_code == 0, vrfs.output
    assert "" in {v["vrf"] for v in json.loads(vrfs.output)}  # the global table
    why = runner.invoke(
        app, ["routing", "show", "--network", str(net), pe, "--lookup", "185.0.0.1", "--json"]
    )
    assert why.exit_code == 0, why.output
    by_vrf = {e["vrf"]: e for e in json.loads(why.output)}
    assert (by_vrf[""]["prefix"], by_vrf[""]["reason"]) == ("185.0.0.0/26", "bgp")
    (net / "routing" / "vpn.csv").write_text("rd,prefix\n65000:1,10.0.0.0/33\n")
    bad = runner.invoke(app, ["routing", "validate", str(net)])
    assert bad.exit_code == 1
    assert "vpn.csv:1: missing column(s) next_hop" in bad.output


def test_validate_reports_next_hops_that_map_to_no_pe(net: Path) -> None:
    path = net / "routing" / "vpn.csv"
    lines = path.read_text().splitlines()
    fields = lines[2].split(",")
    fields[2] = "198.19.99.99"
    lines[2] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    assert validate_native(net) == [
        f"{path}:3: next hop 198.19.99.99 maps to no PE (1 rows in this file)"
    ]
