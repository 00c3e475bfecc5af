"""One FRP's routing bundle on the large network: size, pack, read and compile times.

The FRP of the first service node packs its PEs' tables and the route
reflector's view (``flowmatrix.routing.bundle.pack``); the MG reads it back
(``read_bundle``) and compiles it. The same run reads the same PEs' tables from
the network's native CSV files (what ``frp run --routing`` does) for the ratio.

Run: ``.venv/bin/python bench/bench_routing_bundle.py [--network DIR]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from flowmatrix.config.xml import load_config
from flowmatrix.routing.bundle import pack, read_bundle
from flowmatrix.routing.native import read_native
from flowmatrix.routing.resolve import compile_state
from flowmatrix.synth import generate_network, write_network


def timed(what: object) -> tuple[float, object]:
    assert callable(what)
    began = time.process_time()
    got = what()
    return time.process_time() - began, got


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--network", type=Path, help="a written large network (else generated)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        net = args.network
        if net is None:
            net = Path(tmp, "large")
            write_network(generate_network("large", seed=1), net)
        config = load_config([net / "network.xml"])
        frp = config.frps[0].name
        pes = [p.name for p in config.pes_of(frp)]
        files_s, state = timed(lambda: read_native(net, config, pes=pes))
        assert state is not None
        pack_s, data = timed(lambda: pack(state, pes=pes))  # type: ignore[arg-type]
        assert isinstance(data, bytes)
        read_s, back = timed(lambda: read_bundle(data, config, allowed=pes))
        compile_s, _ = timed(lambda: compile_state(back))  # type: ignore[arg-type]
        rr = state.rr_versions[-1]  # type: ignore[attr-defined]
        print(
            f"large network seed 1, {frp}: {len(pes)} PEs, route reflector "
            f"{len(rr.vpn):,} VPN + {len(rr.global_bgp):,} global paths"
        )
        print(f"bundle {len(data) / 1e6:.1f} MB: pack {pack_s:.2f} CPU-s at the FRP")
        print(f"MG: read {read_s:.2f} CPU-s, compile {compile_s:.2f} CPU-s")
        print(f"reading the same tables from the native CSV files: {files_s:.2f} CPU-s "
              f"(bundle read / CSV read = {read_s / files_s:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
