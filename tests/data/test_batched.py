"""The device-resident batched data path equals the per-item transforms in what it computes and in
the distribution of its random crops and flips (generated FashionMNIST and CIFAR-100 files)."""

import collections

import numpy as np
import pandas as pd
import pytest
import torch
from torchvision.transforms.v2 import functional as F

from phn.config import ModelConfig, StrategyConfig, TrainConfig
from phn.data import make_stream, noisy_stream
from phn.data.batched import BATCH_CORRUPTIONS, DeviceBatches, _blur, crop_and_flip
from phn.strategies import make_strategy
from phn.train import run, training_batches

NO_MD5 = {"verify_checksums": False}


def _fashion(data_root, augment=True, per_class=16, experiences=2):
    return make_stream("split-fashionmnist", num_experiences=experiences, class_order=list(range(10)),
                       max_per_class=per_class, augment=augment, root=data_root, **NO_MD5)


def _all(batches):
    xs, ys = zip(*batches)
    return torch.cat(xs), torch.cat(ys)


@pytest.mark.parametrize("task", [0, 1, 2])  # clean, solarize, blur (experience 4: see below)
def test_without_augmentation_a_batch_equals_the_per_item_pipeline(task, data_root):
    experience = noisy_stream("cifar100", 4, 5, seed=0, augment=False, root=data_root, **NO_MD5)[task]
    x, y = _all(DeviceBatches(experience.train, 7, torch.device("cpu"), torch.Generator(), shuffle=False))
    items = [experience.train[i] for i in range(len(experience.train))]
    expected = torch.stack([item[0] for item in items])
    # blur: float rounding of two blur implementations (~1e-7), times 1/std (~4) after normalisation
    torch.testing.assert_close(x, expected, atol=4e-6 if task == 2 else 0, rtol=0)
    assert y.tolist() == [item[1] for item in items]


def test_experience_4_blurs_each_image_with_its_own_sigma_as_torchvision_would(data_root):
    experience = noisy_stream("cifar100", 4, 5, seed=0, augment=False, root=data_root, **NO_MD5)[3]
    images = torch.stack([experience.train.base.raw(int(i)) for i in experience.train.indices[:6]])
    x = F.to_dtype(images, torch.float32, scale=True)
    sigmas = torch.tensor([0.6, 0.62, 0.65, 0.67, 0.69, 0.7])
    blurred = _blur(x, sigmas)
    for image, out, sigma in zip(x, blurred, sigmas.tolist()):
        torch.testing.assert_close(out, F.gaussian_blur(image, [5, 5], [sigma, sigma]), atol=1e-6, rtol=0)
    g = torch.Generator().manual_seed(0)
    corrupted = BATCH_CORRUPTIONS["autocontrast-gray-blur"](x, g)
    grey = F.rgb_to_grayscale(F.autocontrast(x), num_output_channels=3)
    drawn = 0.6 + 0.1 * torch.rand(6, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(corrupted, _blur(grey, drawn), atol=0, rtol=0)
    assert ((drawn >= 0.6) & (drawn < 0.7)).all()


def _candidates(image: torch.Tensor, mean, std) -> dict[tuple[int, int, bool], torch.Tensor]:
    """Every output the per-item RandomCrop(32, padding=4) + RandomHorizontalFlip can give."""
    padded = F.pad(image, [4, 4, 4, 4])
    out = {}
    for top in range(9):
        for left in range(9):
            crop = F.crop(padded, top, left, 32, 32)
            for flip in (False, True):
                view = F.horizontal_flip(crop) if flip else crop
                out[top, left, flip] = F.normalize(F.to_dtype(view, torch.float32, scale=True), mean, std)
    return out


def _which(output: torch.Tensor, candidates) -> tuple[int, int, bool]:
    matches = [key for key, value in candidates.items() if torch.equal(value, output)]
    assert matches, "an output image is no crop/flip of its source image"
    return matches[0]


def test_every_augmented_image_is_one_of_the_per_item_crops_and_flips(data_root):
    experience = _fashion(data_root)[0]
    subset = experience.train
    batches = DeviceBatches(subset, 8, torch.device("cpu"), torch.Generator().manual_seed(1), shuffle=False)
    x, _ = next(iter(batches))
    for k in range(8):
        source = subset.base.raw(int(subset.indices[k]))
        _which(x[k], _candidates(source, subset.spec.mean, subset.spec.std))


def test_crop_offsets_and_flips_are_uniform_as_the_per_item_transform_draws_them():
    image = torch.arange(3 * 32 * 32, dtype=torch.int64).reshape(1, 3, 32, 32) % 251 + 1  # no zero pixel
    g = torch.Generator().manual_seed(0)
    n = 4000
    offsets = torch.randint(0, 9, (n, 2), generator=g)
    flips = torch.rand(n, generator=g) < 0.5
    out = crop_and_flip(image.expand(n, -1, -1, -1), offsets, flips)
    padded = F.pad(image[0], [4, 4, 4, 4])
    for k in range(0, n, 97):  # the batched crop is the per-item crop at the drawn offset
        top, left = offsets[k].tolist()
        crop = F.crop(padded, top, left, 32, 32)
        assert torch.equal(out[k], F.horizontal_flip(crop) if flips[k] else crop)
    # recover the offsets from the outputs: first non-padding row / column
    rows = (out[:, 0].sum(dim=2) > 0).float().argmax(dim=1)  # rows of zeros at the top = 4 - top
    counts = collections.Counter((4 - rows).clamp(min=0).tolist())
    assert set(counts) <= set(range(5)) and abs(flips.float().mean().item() - 0.5) < 0.03
    for offset in range(9):  # each offset 1/9 of the time (binomial sd ~ 20 of ~444)
        assert abs((offsets[:, 0] == offset).sum().item() - n / 9) < 100


def test_each_image_once_per_epoch_in_a_seeded_order(data_root):
    subset = _fashion(data_root)[1].train
    first = DeviceBatches(subset, 5, torch.device("cpu"), torch.Generator().manual_seed(3))
    epoch1, epoch2 = _all(first), _all(first)
    assert sorted(epoch1[1].tolist()) == sorted(subset.targets.tolist()) == sorted(epoch2[1].tolist())
    assert not torch.equal(epoch1[0], epoch2[0])
    again = _all(DeviceBatches(subset, 5, torch.device("cpu"), torch.Generator().manual_seed(3)))
    assert torch.equal(again[0], epoch1[0]) and len(first) == -(-len(subset) // 5)


def test_grey_images_become_three_identical_channels(data_root):
    x, _ = next(iter(DeviceBatches(_fashion(data_root, augment=False)[0].train, 4, torch.device("cpu"),
                                   torch.Generator(), shuffle=False)))
    assert x.shape == (4, 3, 32, 32) and torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])


def test_the_runner_uses_the_device_path_by_default_and_the_loader_on_request(data_root):
    subset = _fashion(data_root)[0].train
    g = torch.Generator()
    assert isinstance(training_batches(subset, TrainConfig(), torch.device("cpu"), g), DeviceBatches)
    loader = training_batches(subset, TrainConfig(data_path="loader"), torch.device("cpu"), g)
    assert isinstance(loader, torch.utils.data.DataLoader)
    toy = torch.utils.data.TensorDataset(torch.zeros(4, 3, 32, 32), torch.zeros(4, dtype=torch.long))
    assert isinstance(training_batches(toy, TrainConfig(), torch.device("cpu"), g), torch.utils.data.DataLoader)


class Killed(Exception):
    pass


@pytest.mark.parametrize("name", ["hn", "naive"])
def test_device_path_resumes_bit_identically_mid_experience(name, data_root, tmp_path):
    stream = _fashion(data_root, per_class=12)
    cfg = TrainConfig(epochs=3, batch_size=8, eval_batch_size=16, seed=1)

    def strategy():
        torch.manual_seed(1)
        return make_strategy(StrategyConfig(name=name), 2, 5, ModelConfig(freeze_depth=2), seed=1)

    reference = run(stream, strategy(), cfg)
    dying = strategy()
    original, calls = dying.train_step, []

    def step(x, y, task_id):
        calls.append(task_id)
        if task_id == 1 and calls.count(1) == 8:  # 3 batches per epoch: in experience 2's third epoch
            raise Killed
        return original(x, y, task_id)

    dying.train_step = step
    with pytest.raises(Killed):
        run(stream, dying, cfg, out_dir=tmp_path, config={"s": name})
    resumed = run(stream, strategy(), cfg, out_dir=tmp_path, config={"s": name}, resume=True)
    np.testing.assert_array_equal(resumed.acc, reference.acc)
    pd.testing.assert_frame_equal(resumed.steps, reference.steps)
