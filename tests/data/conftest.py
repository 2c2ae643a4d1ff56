"""Shared fixtures of the data tests: generated datasets and an isolated search path.

Every test runs with ``$PHN_DATA`` and ``$PHN_VERIFY_CHECKSUMS`` unset, ``<repo>/data`` redirected
to an empty folder and FashionMNIST's system folder removed, so only the generated files are
found; tests marked ``real_data`` keep the real system folder.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest

from phn.data import datasets


def _load_writers():
    """Import ``fixtures.py`` under a unique module name (test folders have no __init__.py)."""
    spec = importlib.util.spec_from_file_location("phn_tests_data_fixtures", Path(__file__).with_name("fixtures.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


writers = _load_writers()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "real_data: uses the real FashionMNIST files of the Debian package")


@pytest.fixture(autouse=True)
def isolated_search_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)
    monkeypatch.delenv(datasets.CHECKSUM_ENV, raising=False)
    monkeypatch.setattr(datasets, "REPO_DATA_DIR", tmp_path / "repo-data")
    if request.node.get_closest_marker("real_data") is None:
        for name, info in list(datasets.DATASETS.items()):
            monkeypatch.setitem(datasets.DATASETS, name, dataclasses.replace(info, system_dirs=()))


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data root holding every generated dataset (read-only by convention: do not modify)."""
    return writers.write_all(tmp_path_factory.mktemp("data-root"))
