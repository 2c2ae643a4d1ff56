"""The machine's speed unit: the plain slim ResNet-18's training img/s, and times put on the budget's scale."""

import pytest
import torch

from phn.machine import REFERENCE_IMG_S, plain_images_per_second, scaled_minutes, speed_line


def test_plain_speed_is_measured_and_leaves_the_thread_count_alone():
    threads = torch.get_num_threads()
    rate = plain_images_per_second(batch=4, steps=1, warmup=1, repeats=1, threads=1)
    assert rate > 0 and torch.get_num_threads() == threads


def test_times_scale_to_the_reference_machine():
    assert scaled_minutes(30.0, img_s=300.0) == pytest.approx(15.0)  # a machine half as fast
    assert scaled_minutes(10.0, img_s=REFERENCE_IMG_S) == pytest.approx(10.0)
    assert "410 img/s" in speed_line(410.0) and "600 img/s" in speed_line(410.0)
