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


@pytest.mark.parametrize("name", sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")))
def test_every_notebook_declares_its_parameters(name):
    """Every name the parameters cell assigns is one papermill reads (a line it cannot parse, e.g. a
    comment holding "=", would silently drop that parameter, and `phn notebook -p` would refuse it)."""
    import ast
    import json

    cells = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())["cells"]
    source = next("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    assigned = {t.id for node in ast.parse(source).body if isinstance(node, ast.Assign) for t in node.targets}
    declared = notebook_parameters(NOTEBOOKS / f"{name}.ipynb")
    assert declared and assigned == set(declared), sorted(assigned ^ set(declared))


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


def test_claims_land_beside_the_output_and_feed_the_ledger(tmp_path):
    """A notebook run by the runner records its findings as <output>.claims.json (a stale file of an
    earlier run is removed first); the ledger notebook run into the same folder reads them."""
    import nbformat

    from phn.notebooks import execute

    nb = nbformat.v4.new_notebook(metadata=nbformat.read(NOTEBOOKS / "ledger.ipynb", as_version=4).metadata)
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(
                    "from phn.ledger import Finding, record\n"
                    "record('cosine', [Finding('figure12-cosine', f'cos < 0 on {x} seed', 'holds', 'tiny')])")]
    source = tmp_path / "tiny.ipynb"
    nbformat.write(nb, source)
    (tmp_path / "stale.claims.json").write_text("not json")
    execute(source, tmp_path / "stale.ipynb", {"x": 3})
    assert not (tmp_path / "stale.partial.claims.json").exists()
    execute(NOTEBOOKS / "ledger.ipynb", tmp_path / "ledger.ipynb")
    ledger = nbformat.read(tmp_path / "ledger.ipynb", as_version=4)
    import html

    text = html.unescape("".join(out.get("data", {}).get(kind, "") for cell in ledger.cells
                                 for out in cell.get("outputs", []) for kind in ("text/markdown", "text/html")))
    assert "<table" in text  # the ledger is an HTML table, as the reader sees it
    assert "cos < 0 on 3 seed" in text and "holds: **1**" in text and "not measured" in text
    assert "Total: **" in text  # the time of the notebooks beside it
    from phn.notebooks import durations

    (tmp_path / "half.partial.ipynb").write_text("{}")
    times = durations(tmp_path).set_index("notebook")
    assert list(times.index) == ["ledger", "stale"] and times.loc["stale", "parameters"] == "x = 3"
    assert (times.minutes > 0).all()


def test_phn_never_imports_tqdm_auto():
    """``tqdm.auto`` warns "IProgress not found" on import in every notebook kernel without ipywidgets,
    which the book would show as stray stderr: phn uses the plain text bar."""
    sources = (Path(__file__).resolve().parents[1] / "phn").rglob("*.py")
    offenders = [p.name for p in sources if "tqdm.auto" in p.read_text().replace("not tqdm.auto", "")]
    assert offenders == []


def test_every_notebook_is_a_chapter_of_the_book_and_every_chapter_exists():
    """A notebook left out of book/_toc.yml is executed by `make book` but never shown; a chapter
    whose notebook or page is missing breaks the build."""
    import yaml

    book = NOTEBOOKS.parent / "book"
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    files = [chapter["file"] for part in toc["parts"] for chapter in part["chapters"]]
    executed = {f.removeprefix("executed/") for f in files if f.startswith("executed/")}
    assert executed == {p.stem for p in NOTEBOOKS.glob("*.ipynb")}
    assert all((book / f"{f}.md").is_file() for f in files if not f.startswith("executed/"))
