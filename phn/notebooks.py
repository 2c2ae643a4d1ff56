"""Run a notebook with parameters, refusing names it does not declare.

Plain ``papermill nb.ipynb out.ipynb -p freez_depth 2`` only warns about the unknown name and runs
with the default; :func:`execute` (and ``python -m phn notebook``, which ``make book`` uses) stops
with a one-line error listing the notebook's parameters. Values given with ``-p`` are read as YAML,
so lists work too (``-p seeds "[0, 1, 2]"``); ``None``, ``True`` and ``False`` are read as papermill
reads them.

Example::

    python -m phn notebook notebooks/noise.ipynb out.ipynb -p freeze_depth 3
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from phn.config import ConfigError

_PAPERMILL_WORDS = {"None": None, "True": True, "False": False}


def parse_value(text: str) -> Any:
    """A ``-p`` value: ``None``/``True``/``False`` as papermill reads them, else YAML (numbers, lists,
    quoted or plain strings)."""
    import yaml

    if text in _PAPERMILL_WORDS:
        return _PAPERMILL_WORDS[text]
    for number in (int, float):  # as papermill: "1e-3" is a number (YAML 1.1 would keep it a string)
        try:
            return number(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def notebook_parameters(path: str | os.PathLike) -> dict[str, Any]:
    """The parameters a notebook declares in its cell tagged ``parameters`` (name -> default text)."""
    import papermill

    return {name: info["default"] for name, info in papermill.inspect_notebook(str(path)).items()}


def check_parameters(path: str | os.PathLike, parameters: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` naming every parameter the notebook does not declare."""
    known = notebook_parameters(path)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ConfigError(f"{Path(path).name}: unknown parameter(s) {unknown}; it declares {sorted(known)}")


def execute(input_path: str | os.PathLike, output_path: str | os.PathLike,
            parameters: Mapping[str, Any] | None = None, cwd: str | os.PathLike | None = None,
            progress: bool = False) -> None:
    """Check ``parameters`` against the notebook's declared ones, then execute it with papermill.

    The output is written to a temporary ``.partial.ipynb`` beside ``output_path`` and renamed when
    the run succeeds, so a failed run never leaves a half-executed notebook under the final name
    (the partial one stays for inspection). The same holds for the claims the notebook records for
    the ledger (:func:`phn.ledger.record`): the kernel is told to write them to
    ``<output stem>.claims.json`` beside the output (through ``PHN_CLAIMS_FILE``); a stale file of an
    earlier run is removed first.
    """
    import papermill

    from phn.ledger import ENV_FILE, SUFFIX

    parameters = dict(parameters or {})
    check_parameters(input_path, parameters)
    output = Path(output_path)
    partial = output.with_name(f"{output.stem}.partial.ipynb")
    claims, partial_claims = (output.with_name(f"{output.stem}{part}{SUFFIX}") for part in ("", ".partial"))
    for stale in (claims, partial_claims):
        stale.unlink(missing_ok=True)
    previous = os.environ.get(ENV_FILE)
    os.environ[ENV_FILE] = str(partial_claims.resolve())  # the kernel inherits it
    try:
        papermill.execute_notebook(str(input_path), str(partial), parameters=parameters,
                                   cwd=str(cwd) if cwd is not None else None, progress_bar=progress)
    finally:
        if previous is None:
            os.environ.pop(ENV_FILE, None)
        else:
            os.environ[ENV_FILE] = previous
    os.replace(partial, output)
    if partial_claims.exists():
        os.replace(partial_claims, claims)


def durations(directory: str | os.PathLike) -> "pd.DataFrame":
    """How long each notebook executed by papermill in ``directory`` ran (from the ``papermill``
    metadata papermill writes into its output): notebook, minutes, the parameters given (``-p``; empty
    = the defaults), finished (UTC). Half-executed ``.partial.ipynb`` files and notebooks without that
    metadata are left out."""
    import json

    import pandas as pd

    rows = []
    for path in sorted(Path(directory).glob("*.ipynb")):
        if path.name.endswith(".partial.ipynb"):
            continue
        meta = json.loads(path.read_text()).get("metadata", {}).get("papermill", {})
        if meta.get("duration") is None:
            continue
        given = meta.get("parameters") or {}
        rows.append({"notebook": path.stem, "minutes": meta["duration"] / 60,
                     "parameters": ", ".join(f"{k} = {v}" for k, v in given.items()), "finished": meta.get("end_time")})
    return pd.DataFrame(rows, columns=["notebook", "minutes", "parameters", "finished"])


def parse_assignments(pairs: Sequence[Sequence[str]], yaml_texts: Sequence[str] = ()) -> dict[str, Any]:
    """``-p name value`` pairs and ``-y`` YAML mappings into one parameter dict (later wins)."""
    import yaml

    parameters: dict[str, Any] = {}
    for text in yaml_texts:
        values = yaml.safe_load(text)
        if not isinstance(values, dict):
            raise ConfigError(f"-y expects a YAML mapping such as '{{seeds: [0, 1]}}', got {text!r}")
        parameters.update(values)
    for name, value in pairs:
        parameters[name] = parse_value(value)
    return parameters


__all__ = ["check_parameters", "durations", "execute", "notebook_parameters", "parse_assignments", "parse_value"]
