"""shell/cli/common.py: the config every sub-command loads, or exit 2 naming the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from shell.cli.common import config_or_exit


def test_a_good_config_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[server]\nport = 8181\n', encoding="utf-8")
    assert config_or_exit(path).server.port == 8181


def test_a_bad_key_exits_2_and_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[server]\nport = "eighty"\n', encoding="utf-8")
    with pytest.raises(typer.Exit) as stopped:
        config_or_exit(path)
    assert stopped.value.exit_code == 2
    assert "server.port" in capsys.readouterr().err
