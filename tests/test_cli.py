import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowmatrix import __version__
from flowmatrix.cli import app
from flowmatrix.docgen import cli_reference, command_paths

DATA = Path(__file__).parent / "config" / "data"
runner = CliRunner()


ALL_COMMANDS = command_paths()


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "flowmatrix")
def test_every_command_has_help(path):
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_version_is_printed():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"flowmatrix {__version__}"


def test_config_validate_accepts_a_valid_file():
    result = runner.invoke(app, ["config", "validate", str(DATA / "valid.xml")])
    assert result.exit_code == 0, result.output
    assert (
        "valid: network lab (AS65000): 2 service nodes, 2 FRPs, 3 PEs, 3 intervals" in result.output
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("malformed.xml", "malformed XML"),
        ("schema-violation.xml", "attribute 'loopbak'"),
        ("xxe.xml", "XXE"),
        ("entity-bomb.xml", "entity-expansion"),
        ("unknown-refs.xml", "unknown frp 'frp-nowhere'"),
    ],
)
def test_config_validate_rejects_bad_files_with_one_line_per_problem(name, expected):
    result = runner.invoke(app, ["config", "validate", str(DATA / name)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert all(line.startswith(str(DATA / name)) for line in lines), lines
    assert any(expected in line for line in lines), lines


def test_console_script_runs_as_a_process():
    done = subprocess.run(
        [sys.executable, "-m", "flowmatrix", "config", "validate", str(DATA / "unknown-refs.xml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 2


def test_cli_reference_documents_every_command():
    reference = cli_reference()
    for path in ALL_COMMANDS:
        assert f"## `{' '.join(('flowmatrix', *path))}`" in reference


def test_config_validate_and_show_speak_json(tmp_path):
    import json

    ok = runner.invoke(app, ["config", "validate", str(DATA / "valid.xml"), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["valid"] is True
    bad = tmp_path / "bad.xml"
    bad.write_text("<network name='x' asn='1'><pe/></network>")
    refused = runner.invoke(app, ["config", "validate", str(bad), "--json"])
    assert refused.exit_code == 1
    problems = json.loads(refused.output)["problems"]
    assert problems
    assert {"file", "line", "element", "message"} <= set(problems[0])
    shown = runner.invoke(app, ["config", "show", str(DATA / "valid.xml"), "--json"])
    assert shown.exit_code == 0, shown.output
    model = json.loads(shown.output)
    assert model["name"] == "lab"
    assert len(model["pes"]) == 3


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["config", "validate", str(DATA / "valid.xml")], 0),
        (["config", "validate", str(DATA / "valid.xml"), "--no-such-option"], 2),
        (["tm", "show", "--mg", "http://127.0.0.1:9", "--token-file", "/nonexistent"], 2),
        (["tm", "show", "--mg", "http://127.0.0.1:9", "--token-file", __file__], 2),
    ],
    ids=["valid", "usage", "token-file", "unreachable"],
)
def test_exit_codes_follow_the_documented_contract(args, code):
    assert runner.invoke(app, args).exit_code == code


def test_an_invalid_configuration_exits_1(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<network name='x' asn='1'><pe/></network>")
    assert runner.invoke(app, ["config", "validate", str(bad)]).exit_code == 1
