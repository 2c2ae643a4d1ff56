"""A full-size CIFAR-100 of random pixels in the real on-disk format, to time Split-CIFAR100 runs.

CIFAR-100 cannot be obtained here. Step time does not depend on the pixels, so a GPU timing of the
paper's Split-CIFAR100 protocol (20 experiences x 5 classes x 500 training images, 100 test images per
class) can run on ``cifar-100-python/{train,test,meta}`` written with the test fixtures' writer at the
real size. Accuracies of such runs mean nothing; read them with ``--no-verify-checksums``.

    python -m benchmarks.synthetic_cifar /tmp/phn-data
    python -m phn run --stream split-cifar100 --data-root /tmp/phn-data --no-verify-checksums ...
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(relative: str):
    """A module of the test suite by path (``tests`` is no package; another one may be installed)."""
    spec = importlib.util.spec_from_file_location(Path(relative).stem, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fixtures = _load("tests/data/fixtures.py")


def write(root: Path, train_per_class: int = 500, test_per_class: int = 100) -> Path:
    """Write ``root/cifar-100-python`` at the given size; returns ``root``."""
    saved = fixtures.TRAIN_PER_CLASS, fixtures.TEST_PER_CLASS
    fixtures.TRAIN_PER_CLASS, fixtures.TEST_PER_CLASS = train_per_class, test_per_class
    try:
        return fixtures.write_cifar100(Path(root))
    finally:
        fixtures.TRAIN_PER_CLASS, fixtures.TEST_PER_CLASS = saved


if __name__ == "__main__":
    print(write(Path(sys.argv[1] if len(sys.argv) > 1 else "data-synthetic")))
