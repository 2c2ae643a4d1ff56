"""Root pytest configuration, shared by tests/ and the notebook smoke runs (``pytest --nbval``)."""

import os
import tempfile


def pytest_configure(config):
    # Runs made by notebooks under test go to a throw-away folder, never into runs/ (and never come
    # from the book's results cache). Notebook kernels inherit this environment.
    # Notebooks call phn.config.smoke_sized on their config: tiny data, one epoch.
    os.environ.setdefault("PHN_SMOKE", "1")
    if "PHN_RUNS" not in os.environ:
        os.environ["PHN_RUNS"] = tempfile.mkdtemp(prefix="phn-test-runs-")
