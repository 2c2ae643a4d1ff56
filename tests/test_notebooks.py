"""The project's notebook runner: unknown parameters are refused, bad values are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from phn.cli import main
from phn.config import ConfigError
from phn.notebooks import check_parameters, notebook_parameters, parse_assignments, parse_value

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_values_are_read_like_papermill_and_yaml():
    assert parse_value("None") is None and parse_value("True") is True and parse_value("3") == 3
    assert parse_value("[0, 1]") == [0, 1] and parse_value("abc") == "abc" and parse_value("1e-3") == 1e-3
    assert parse_assignments([("epochs", "2")], ["{seeds: [0, 1], epochs: 5}"]) == {"seeds": [0, 1], "epochs": 2}
    with pytest.raises(ConfigError, match="YAML mapping"):
        parse_assignments([], ["[1, 2]"])


@pytest.mark.parametrize("name", ["freeze", "noise", "quickstart"])
def test_every_notebook_declares_its_parameters(name):
    assert notebook_parameters(NOTEBOOKS / f"{name}.ipynb")


def test_unknown_parameter_is_refused_before_running(tmp_path, capsys):
    with pytest.raises(ConfigError, match="freez_depth"):
        check_parameters(NOTEBOOKS / "noise.ipynb", {"freez_depth": 2})
    out = tmp_path / "out.ipynb"
    assert main(["notebook", str(NOTEBOOKS / "noise.ipynb"), str(out), "-p", "freez_depth", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "freez_depth" in err and "freeze_depth" in err and len(err.splitlines()) == 1
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("name,value", [("freeze_depth", "9"), ("epochs", "abc")])
def test_bad_value_fails_naming_the_parameter(tmp_path, capsys, name, value):
    out = tmp_path / "out.ipynb"
    assert main(["notebook", str(NOTEBOOKS / "noise.ipynb"), str(out), "-p", name, value]) == 1
    err = capsys.readouterr().err.strip()
    assert f"NoiseConfig.{name}" in err and "ConfigError" in err and len(err.splitlines()) == 1
    assert not out.exists() and (tmp_path / "out.partial.ipynb").exists()
