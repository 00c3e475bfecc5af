from __future__ import annotations

from pathlib import Path

import pytest

from flowmatrix.config.xml import config_to_bytes
from flowmatrix.errors import AuthError, ConfigError
from flowmatrix.frp.client import ConfigClient, ConfigClientConfig
from flowmatrix.frp.testing import FakeMg, small_config


def client(mg: FakeMg, data: Path, token: str = "secret") -> ConfigClient:
    return ConfigClient(ConfigClientConfig(mg.url, "frp-a", token, data, refresh=0))


def test_the_config_is_downloaded_once_then_revalidated_by_etag(tmp_path: Path) -> None:
    view = small_config().view_for_frp("frp-a")
    with FakeMg(config_to_bytes(view)) as mg:
        c = client(mg, tmp_path)
        c.start()
        assert c.current == view
        assert c.etag == mg.etag
        assert c.fetch() is False  # 304
        assert mg.config_requests == 2
        assert (tmp_path / "config.xml").read_bytes() == config_to_bytes(view)


def test_a_refused_token_stops_the_start(tmp_path: Path) -> None:
    with FakeMg(config_to_bytes(small_config())) as mg, pytest.raises(AuthError):
        client(mg, tmp_path, token="wrong").start()


def test_without_mg_and_without_a_copy_the_frp_refuses_to_start(tmp_path: Path) -> None:
    mg = FakeMg(b"")
    mg.start()
    mg.stop()
    with pytest.raises(ConfigError, match="no configuration"):
        client(mg, tmp_path).start()
