"""``flowmatrix routing show --bmp-snapshot``: a live snapshot answers like the tables it holds."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from flowmatrix.addr import format_prefixes
from flowmatrix.cli import app
from flowmatrix.routing import explain, read_native
from flowmatrix.routing.live import write_snapshot
from flowmatrix.routing.tables import RrTables


def test_routing_show_with_a_bmp_snapshot_explains_like_the_native_tables(
    tiny_net: tuple[Path, Path], tmp_path: Path
) -> None:
    net, _ = tiny_net
    state = read_native(net)
    rr = state.rr_versions[-1]
    # the snapshot is newer than every native table: it is the view in force now
    newest = max(v.taken_at_ms for vs in state.pe_versions.values() for v in vs)
    write_snapshot(tmp_path / "snap", RrTables(newest + 1000, rr.vpn, rr.global_bgp))
    prefixes = format_prefixes(rr.vpn.family, rr.vpn.hi, rr.vpn.lo, rr.vpn.length).to_pylist()
    found = None
    for prefix in prefixes[:200]:
        address = prefix.split("/")[0]
        for pe in sorted(state.pe_versions):
            if any(e.reason == "bgp" for e in explain(state, pe, address)):
                found = (pe, address)
                break
        if found:
            break
    assert found is not None
    pe, address = found
    runner = CliRunner()
    native = runner.invoke(app, ["routing", "show", "--network", str(net), pe, "--lookup", address])
    live = runner.invoke(
        app,
        [
            "routing",
            "show",
            "--network",
            str(net),
            pe,
            "--lookup",
            address,
            "--bmp-snapshot",
            str(tmp_path / "snap"),
        ],
    )
    assert native.exit_code == 0, native.output
    assert live.exit_code == 0, live.output
    head, *lines = live.output.splitlines()
    assert head.startswith(f"bmp snapshot {tmp_path / 'snap'}: taken_at=")
    assert f"vpn_paths={len(rr.vpn)}" in head
    assert lines == native.output.splitlines()
    assert any("reason=bgp" in line for line in lines)


def test_routing_show_with_a_missing_snapshot_fails_with_the_path(
    tiny_net: tuple[Path, Path], tmp_path: Path
) -> None:
    net, _ = tiny_net
    pe = sorted(read_native(net).pe_versions)[0]
    out = CliRunner().invoke(
        app, ["routing", "show", "--network", str(net), pe, "--bmp-snapshot", str(tmp_path)]
    )
    assert out.exit_code == 1
    assert str(tmp_path) in out.output
