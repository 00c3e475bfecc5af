"""Native routing files written back (write_native) and routing bundles packed and unpacked."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowmatrix.errors import RoutingError
from flowmatrix.routing.bundle import BundleError, pack, read_bundle, unpack
from flowmatrix.routing.native import (
    bgp_table_arrow,
    connected_table_arrow,
    rd_table_arrow,
    read_native,
    write_native,
)
from flowmatrix.routing.tables import RoutingState


@pytest.fixture(scope="module")
def state(tiny_net: tuple[Path, Path]) -> RoutingState:
    return read_native(tiny_net[0])


def assert_same_tables(got: RoutingState, want: RoutingState, pes: list[str]) -> None:
    assert sorted(got.pe_versions) == sorted(pes)
    for pe in pes:
        assert len(got.pe_versions[pe]) == len(want.pe_versions[pe])
        for a, b in zip(got.pe_versions[pe], want.pe_versions[pe], strict=True):
            assert a.taken_at_ms == b.taken_at_ms
            assert rd_table_arrow(a.rd).equals(rd_table_arrow(b.rd))
            assert connected_table_arrow(a.connected).equals(connected_table_arrow(b.connected))
            for x, y, vpn in ((a.bgp, b.bgp, True), (a.global_bgp, b.global_bgp, False)):
                assert (x is None) == (y is None)
                if x is not None and y is not None:
                    assert bgp_table_arrow(x, vpn=vpn).equals(bgp_table_arrow(y, vpn=vpn))
    rr, rr_want = got.rr_versions[-1], want.rr_versions[-1]
    assert rr.taken_at_ms == rr_want.taken_at_ms
    assert bgp_table_arrow(rr.vpn, vpn=True).equals(bgp_table_arrow(rr_want.vpn, vpn=True))
    assert bgp_table_arrow(rr.global_bgp, vpn=False).equals(
        bgp_table_arrow(rr_want.global_bgp, vpn=False)
    )


def test_write_native_reads_back_every_table_and_time(state: RoutingState, tmp_path: Path):
    write_native(state, tmp_path / "copy")
    again = read_native(tmp_path / "copy", state.config)
    assert_same_tables(again, state, list(state.pe_versions))
    # the PEs' own VPN tables carry VRFs and best/multipath marks: they survive too
    own = [v.bgp for vs in state.pe_versions.values() for v in vs if v.bgp is not None]
    assert own
    assert any((t.vrf >= 0).any() for t in own)


def test_a_bundle_holds_the_chosen_pes_and_the_route_reflector(state: RoutingState):
    pes = ["lon-pe1", "lon-pe2"]
    back = read_bundle(pack(state, pes=pes), state.config, allowed=pes)
    assert_same_tables(back, state, pes)


def test_a_bundle_with_another_frps_pe_is_refused(state: RoutingState):
    data = pack(state, pes=["lon-pe1", "par-pe1"])
    with pytest.raises(BundleError, match="par-pe1"):
        read_bundle(data, state.config, allowed=["lon-pe1", "lon-pe2"])


def tar_of(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info, body in members:
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return out.getvalue()


def file_member(name: str, body: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(body)
    return info, body


def test_unsafe_members_are_refused_before_anything_is_written(tmp_path: Path):
    link = tarfile.TarInfo("manifest.json")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    directory = tarfile.TarInfo("sub")
    directory.type = tarfile.DIRTYPE
    cases = {
        "../escape.json": tar_of(file_member("../escape.json", b"{}")),
        "/abs.json": tar_of(file_member("/abs.json", b"{}")),
        "sub/x.parquet": tar_of(file_member("sub/x.parquet", b"x")),
        "symlink": tar_of((link, None)),
        "directory": tar_of((directory, None)),
        "twice": tar_of(file_member("a.csv", b"1"), file_member("a.csv", b"2")),
    }
    for case, data in cases.items():
        target = tmp_path / case.replace("/", "_")
        with pytest.raises(BundleError):
            unpack(data, target)
        assert not target.exists() or not any(target.iterdir()), case
    assert not (tmp_path.parent / "escape.json").exists()


def test_size_limit_and_garbage_are_refused(tmp_path: Path):
    data = tar_of(file_member("a.parquet", b"x" * 1000))
    with pytest.raises(BundleError, match="more than 999"):
        unpack(data, tmp_path / "a", max_bytes=999)
    assert unpack(data, tmp_path / "b", max_bytes=1000) == ["a.parquet"]
    for junk in (b"", b"not a tar", b"\x1f\x8b\x08\x00" + b"\x00" * 20, data[: len(data) // 2]):
        with pytest.raises(BundleError, match="unreadable bundle"):
            unpack(junk, tmp_path / "junk")


def test_the_manifest_may_name_only_files_of_the_bundle(state: RoutingState, tmp_path: Path):
    manifest = {
        "format": "flowmatrix-routing/1",
        "pes": {"lon-pe1": {"rd": "../../../etc/passwd", "connected": "c.parquet"}},
    }
    data = tar_of(
        file_member("manifest.json", json.dumps(manifest).encode()),
        file_member("c.parquet", b"PAR1"),
    )
    with pytest.raises(BundleError, match=r"does not hold: \.\./\.\./\.\./etc/passwd"):
        read_bundle(data, state.config, allowed=["lon-pe1"])
    no_manifest = tar_of(file_member("c.parquet", b"PAR1"))
    with pytest.raises(BundleError, match="without manifest"):
        read_bundle(no_manifest, state.config, allowed=["lon-pe1"])


def test_a_broken_table_in_a_bundle_is_named_by_its_file(state: RoutingState):
    manifest = {
        "format": "flowmatrix-routing/1",
        "pes": {"lon-pe1": {"rd": "rd.parquet", "connected": "c.parquet"}},
    }
    data = tar_of(
        file_member("manifest.json", json.dumps(manifest).encode()),
        file_member("rd.parquet", b"PAR1 not really"),
        file_member("c.parquet", b"PAR1"),
    )
    with pytest.raises(BundleError, match=r"^c\.parquet: unreadable table") as caught:
        read_bundle(data, state.config, allowed=["lon-pe1"])
    assert "flowmatrix-bundle" not in str(caught.value)  # no temporary path in the answer


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_only_ever_raise_routing_errors(data: bytes):
    from flowmatrix.config.model import NetworkConfig

    with pytest.raises(RoutingError):
        read_bundle(data, NetworkConfig("n", 1), allowed=[])


def test_the_same_tables_pack_to_the_same_octets(state: RoutingState):
    first = pack(state, pes=["fra-pe1"])
    time.sleep(1.1)  # tar and gzip headers would carry a new second
    assert pack(state, pes=["fra-pe1"]) == first
    assert pack(state, pes=["fra-pe2"]) != first
