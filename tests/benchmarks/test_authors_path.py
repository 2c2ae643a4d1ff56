"""The re-implemented per-sample path (benchmarks/authors_path.py) computes what phn computes.

In float64, for HN-4, HN-2 and HN-F on a batch of 4 at experience 3 (two earlier tasks in the
regulariser; the hypernetwork moved away from the snapshot so that R > 0): the per-sample path
(weights generated per sample, target under ``vmap`` with batch-statistics BN on single samples,
snapshot regeneration in a loop over tasks) gives phn's CE (per-sample norm, one generation per batch),
R at the look-ahead point omega' (recorded targets, one batched call), loss and cos(g1, g2), and its
gradient g1 + g2 equals phn's g1 + g2 = 2 x phn's update direction, for every hypernetwork tensor. A
full step of each is then Adam's first step on its own direction.
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.authors_path import AuthorsStep, PerSampleGenerator
from phn.config import ModelConfig
from phn.strategies.partial_hn import PartialHN

EARLIER = 2
NF = 20  # the paper's width
TIGHT = {"rtol": 1e-12, "atol": 1e-12}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny problems run on one thread: two threads on a busy 2-core machine wait ~15 ms per kernel."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def assert_equal(actual: torch.Tensor, expected: torch.Tensor, name: str, scale: float = 1e-10) -> None:
    """Equal up to ``scale`` times the largest magnitude of ``expected`` (float64 summation orders differ:
    measured <= 3e-13 of it)."""
    torch.testing.assert_close(actual, expected, rtol=0, atol=scale * float(expected.abs().max()),
                               msg=lambda m: f"{name}: {m}")


def prepared(k: int, batch: int = 4, hw: int = 16) -> tuple[PartialHN, AuthorsStep, torch.Tensor, torch.Tensor]:
    """A float64 HN-k at experience EARLIER + 1 and the authors' path on the same modules."""
    model_cfg = ModelConfig(nf=NF, freeze_depth=k, prefix_norm="batch")  # the authors' prefix BN (batch statistics)
    strategy = PartialHN(num_tasks=EARLIER + 1, num_classes=3, model_cfg=model_cfg)
    for module in (strategy.prefix, strategy.target, strategy.hnet):
        module.double()
    # phn's _logits returns float32 logits (for its bf16 autocast); keep them in float64 here
    strategy._logits = lambda z, weights: strategy.target(z, weights)  # type: ignore[method-assign]
    authors = AuthorsStep.from_strategy(strategy)
    g = torch.Generator().manual_seed(1)
    for task in range(EARLIER):
        strategy.begin_experience(task)
        strategy.end_experience(task)  # freezes the prefix, records H*(e_j)
        authors.end_experience()  # their snapshot copy
    strategy.begin_experience(EARLIER)
    with torch.no_grad():  # training moved the hypernetwork since the snapshot
        for p in strategy.hnet.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    x = torch.randn(batch, 3, hw, hw, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (batch,), generator=g)
    return strategy, authors, x, y


def test_per_sample_generator_gives_the_hypernetworks_outputs() -> None:
    strategy, _, _, _ = prepared(2)
    ids = torch.tensor([2, 2, 0, 1])
    ours, theirs = strategy.hnet(ids), PerSampleGenerator(strategy.hnet)(ids)
    assert list(ours) == list(theirs)
    for name in ours:
        torch.testing.assert_close(theirs[name], ours[name], **TIGHT, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("k", [4, 2, 0])
def test_loss_and_gradients_equal_phn_in_float64(k: int) -> None:
    strategy, authors, x, y = prepared(k)
    ours = strategy.compute_gradients(x, y, EARLIER)
    theirs = authors.gradients(x, y, EARLIER)
    assert float(ours.reg) > 1e-3  # the regulariser is active
    torch.testing.assert_close(theirs.ce, ours.ce, **TIGHT)
    torch.testing.assert_close(theirs.reg, ours.reg, **TIGHT)
    torch.testing.assert_close(theirs.loss, ours.ce + strategy.hyper_cfg.beta * ours.reg, **TIGHT)
    assert theirs.cos == pytest.approx(ours.cos, rel=1e-9)
    assert set(theirs.grads) == set(ours.grads)
    for name, grad in theirs.grads.items():
        assert_equal(grad, ours.g1[name] + ours.g2[name], name)
        assert_equal(grad, 2 * ours.grads[name], name)
    assert all(p.grad is None for p in strategy.hnet.parameters())  # gradients land on the copy only


def test_one_step_is_adam_on_twice_phns_direction() -> None:
    """A first Adam step moves every parameter by lr * g / (|g| + eps): the per-sample path with
    g = g1 + g2, phn with g = (g1 + g2) / 2 (the same up to eps / |g|)."""
    strategy, _, x, y = prepared(2)
    twin, authors, _, _ = prepared(2)  # the same, deterministically
    before = {n: p.detach().clone() for n, p in strategy.hnet.named_parameters()}
    direction = strategy.compute_gradients(x, y, EARLIER).grads  # (g1 + g2) / 2
    strategy.train_step(x, y, EARLIER)
    authors.train_step(x, y, EARLIER)
    lr, eps = strategy.lr, 1e-8
    for (name, ours), theirs in zip(strategy.hnet.named_parameters(), twin.hnet.parameters(), strict=True):
        g = direction[name]
        context = {"rtol": 0, "atol": 1e-12, "msg": lambda m, name=name: f"{name}: {m}"}
        torch.testing.assert_close(ours.detach(), before[name] - lr * g / (g.abs() + eps), **context)
        torch.testing.assert_close(theirs.detach(), before[name] - lr * 2 * g / (2 * g.abs() + eps), **context)
