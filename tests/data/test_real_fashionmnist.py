"""The one test on real data: Split-FashionMNIST from the Debian package's files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from phn.data import dataset_targets, make_stream, stream_provenance

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.real_data
@pytest.mark.skipif(not SYSTEM_DIR.is_dir(), reason=f"{SYSTEM_DIR} absent (apt-get install dataset-fashion-mnist)")
def test_split_fashionmnist_from_the_debian_files(tmp_path):
    (tmp_path / "nothing-here").mkdir()
    stream = make_stream("split-fashionmnist", seed=0, root=tmp_path / "nothing-here")
    assert len(stream) == 5 and sorted(c for e in stream for c in e.classes) == list(range(10))
    for e in stream:
        assert e.train.base.root == SYSTEM_DIR and len(e.classes) == 2
        assert len(e.train) == 12000 and len(e.test) == 2000
        assert torch.equal(torch.bincount(dataset_targets(e.train)), torch.tensor([6000, 6000]))
    records = stream_provenance(stream)  # verified by default: the registered md5 sums fit the Debian files
    assert [(r["split"], r["checksum"]) for r in records] == [("train", "md5 of decompressed content"),
                                                            ("test", "md5 of decompressed content")]
    assert all(Path(f["path"]).parent == SYSTEM_DIR for r in records for f in r["files"])
    x, y = stream[0].train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y in (0, 1)
