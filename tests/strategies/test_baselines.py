"""Naive, EWC and latent replay (LR-k) on the tiny stream."""

import io

import pytest
import torch

from phn.config import ModelConfig
from phn.strategies.ewc import EWC
from phn.strategies.latent_replay import LatentBuffer, LatentReplay
from phn.strategies.naive import Naive
from tiny import tiny_stream


def _train(strategy, experience, steps=4, batch=16):
    strategy.begin_experience(experience)
    loader = torch.utils.data.DataLoader(experience.train, batch_size=batch, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    logs = []
    for _ in range(steps):
        for x, y in loader:
            logs.append(strategy.train_step(x, y, experience.task_id))
    strategy.end_experience(experience)
    return logs


def _accuracy(strategy, experience):
    x = torch.stack([experience.test[i][0] for i in range(len(experience.test))])
    y = torch.as_tensor(experience.test.targets)
    return float((strategy.predict(x, experience.task_id).argmax(1) == y).float().mean())


def test_naive_learns_and_uses_one_head_per_task():
    torch.manual_seed(0)
    stream = tiny_stream(2)
    naive = Naive(2, 2, batch_size=16)
    head1 = [p.clone() for p in naive.model.classifier.heads[1].parameters()]
    _train(naive, stream[0], steps=15)  # enough steps for BN running statistics to settle
    assert _accuracy(naive, stream[0]) > 0.9
    for before, after in zip(head1, naive.model.classifier.heads[1].parameters()):
        assert torch.equal(before, after), "training task 0 must not touch head 1"
    assert naive.predict(stream[0].test[0][0][None], 0).shape == (1, 2)


def test_naive_batch_norm_option_has_no_running_statistics():
    naive = Naive(1, 2, model_cfg=ModelConfig(prefix_norm="batch"))
    assert all(not m.track_running_stats for m in naive.model.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_ewc_penalty_zero_at_anchor_and_grows_with_distance():
    torch.manual_seed(0)
    stream = tiny_stream(2)
    ewc = EWC(2, 2, batch_size=16, ewc_lambda=10.0)
    assert ewc.penalty() is None
    _train(ewc, stream[0], steps=2)
    assert ewc.stored_floats() == 2 * sum(p.numel() for p in ewc.model.parameters())
    assert ewc.penalty().item() == 0.0
    params = [p for p in ewc.model.parameters() if p.requires_grad]
    penalties = []
    for scale in (1e-3, 1e-2, 1e-1):
        with torch.no_grad():
            saved = [p.clone() for p in params]
            for p in params:
                p.add_(scale)
        penalties.append(ewc.penalty().item())
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)
    assert 0 < penalties[0] < penalties[1] < penalties[2]
    assert penalties[1] / penalties[0] == pytest.approx(100, rel=1e-3)  # quadratic


def test_ewc_reduces_forgetting_of_shared_weights():
    stream = tiny_stream(2)
    moved = {}
    for lam in (0.0, 1e4, 1e6):
        torch.manual_seed(0)
        ewc = EWC(2, 2, batch_size=16, ewc_lambda=lam)
        _train(ewc, stream[0], steps=2)
        anchor = {n: p.detach().clone() for n, p in ewc.model.named_parameters()}
        _train(ewc, stream[1], steps=5)
        with torch.no_grad():
            moved[lam] = sum(float((ewc.importance[n] * (p - anchor[n]) ** 2).sum())
                             for n, p in ewc.model.named_parameters())
    # Fisher-weighted movement away from the anchor shrinks as lambda grows (measured: 0.84, 0.43)
    assert moved[1e6] < moved[1e4] < moved[0.0]
    assert moved[1e6] < 0.6 * moved[0.0]


def test_buffer_is_class_balanced_and_bounded():
    buffer = LatentBuffer(10)
    g = torch.Generator().manual_seed(0)
    for task, classes in enumerate([(3, 7), (1, 4, 9)]):
        quotas = buffer.quotas(buffer.seen_classes() + list(classes))
        buffer.trim(quotas)
        for c in classes:
            n = quotas[c]
            buffer.add(torch.randn(n, 4), torch.zeros(n, dtype=torch.long), torch.full((n,), task),
                       torch.full((n,), c))
    counts = torch.bincount(buffer.classes, minlength=10)
    assert len(buffer) == 10
    assert sorted(counts[[3, 7, 1, 4, 9]].tolist()) == [2, 2, 2, 2, 2]
    latents, labels, tasks = buffer.sample(7, g)
    assert latents.shape == (7, 4) and tasks.max() <= 1


@pytest.mark.parametrize("freeze_depth", [0, 2, 4])
def test_latent_replay_freezes_prefix_weights_and_bn_statistics(freeze_depth):
    torch.manual_seed(0)
    stream = tiny_stream(3, per_class=12)
    lr = LatentReplay(3, 2, model_cfg=ModelConfig(freeze_depth=freeze_depth), batch_size=16, buffer_size=9)
    _train(lr, stream[0], steps=2)
    frozen = {k: v.clone() for k, v in lr.prefix.state_dict().items()}
    for experience in stream[1:]:
        logs = _train(lr, experience, steps=2)
        assert "replay_ce" in logs[-1]
    for k, v in lr.prefix.state_dict().items():
        assert torch.equal(v, frozen[k]), f"frozen prefix entry {k} drifted"
    # 6 classes share 9 slots: 2 each, the 3 earliest classes get one more; balanced by global class
    counts = torch.bincount(lr.buffer.classes, minlength=6)
    assert len(lr.buffer) == 9 and counts.tolist() == [2, 2, 2, 1, 1, 1]
    assert lr.buffer.latents.shape[1:] == lr.prefix(stream[0].train[0][0][None]).shape[1:]
    assert lr.stored_floats() == lr.buffer.latents.numel()


def test_latent_replay_coefficient_zero_replays_nothing():
    torch.manual_seed(0)
    stream = tiny_stream(2)
    lr = LatentReplay(2, 2, batch_size=16, buffer_size=8, replay_coef=0.0)
    _train(lr, stream[0], steps=1)
    logs = _train(lr, stream[1], steps=1)
    assert "replay_ce" not in logs[-1]
    assert len(lr.buffer) == 0 and lr.stored_floats() == 0


@pytest.mark.parametrize("cls", [Naive, EWC, LatentReplay])
def test_state_dict_round_trip_gives_identical_predictions(cls):
    torch.manual_seed(0)
    stream = tiny_stream(2)
    a = cls(2, 2, batch_size=16)
    _train(a, stream[0], steps=1)
    b = cls(2, 2, batch_size=16)
    buffer = io.BytesIO()  # a real save / load, as a checkpoint does
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b.load_state_dict(torch.load(buffer, weights_only=True))  # plain data: checkpoints load safely
    x = torch.stack([stream[0].test[i][0] for i in range(4)])
    assert torch.equal(a.predict(x, 0), b.predict(x, 0))
    _train(a, stream[1], steps=1)
    _train(b, stream[1], steps=1)
    assert torch.equal(a.predict(x, 1), b.predict(x, 1))


# ---- speed levers: channels-last tensors and fused Adam (as PartialHN; on by default) ---------------------------
def _after_one_experience(cls, channels_last, fused_adam, **kwargs):
    """A strategy trained on experience 1 of the tiny stream (seeded), and experience 2."""
    torch.manual_seed(0)
    stream = tiny_stream(2)
    strategy = cls(2, 2, batch_size=16, channels_last=channels_last, fused_adam=fused_adam, **kwargs)
    _train(strategy, stream[0], steps=1)
    return strategy, stream[1]


LEVER_CASES = [(Naive, {}), (EWC, {"ewc_lambda": 100.0}),
               (LatentReplay, {"model_cfg": ModelConfig(freeze_depth=2), "buffer_size": 8})]


def _uses_levers(strategy) -> bool:
    convs = [m.weight for m in strategy.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs
    if all(w.is_contiguous() for w in convs):
        assert not strategy.optimizer.param_groups[0]["fused"]
        return False
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert all(not w.is_contiguous() for w in convs if w.shape[-1] > 1)  # 1 x 1 kernels are both
    assert strategy.optimizer.param_groups[0]["fused"]
    return True


@pytest.mark.parametrize("cls, kwargs", LEVER_CASES)
def test_baselines_speed_levers_are_on_by_default_and_switch_off(cls, kwargs):
    """Channels-last tensors and fused Adam are the default (Naive's fidelity seeds measured with and
    without them: benchmarks/results/baseline-levers); both False gives contiguous tensors and
    PyTorch's default Adam, the numbers of releases before the levers."""
    assert _uses_levers(cls(2, 2, **kwargs))
    assert _uses_levers(cls(2, 2, channels_last=True, fused_adam=True, **kwargs))
    assert not _uses_levers(cls(2, 2, channels_last=False, fused_adam=False, **kwargs))


def test_make_strategy_builds_the_baselines_with_the_levers():
    """The runner's path (phn.strategies.make_strategy) gets the default, so every chapter's baselines use it."""
    from phn.config import StrategyConfig
    from phn.strategies import make_strategy

    for name in ("naive", "ewc", "lr"):
        strategy = make_strategy(StrategyConfig(name=name, buffer_size=8), 2, 2, ModelConfig(freeze_depth=2))
        assert _uses_levers(strategy)


@pytest.mark.parametrize("cls, kwargs", LEVER_CASES)
def test_channels_last_computes_the_same_loss_and_gradients_up_to_rounding(cls, kwargs):
    """At the same state after experience 1 (EWC's penalty, LR-k's frozen prefix and replay buffer
    active), experience 2's loss and every gradient agree with contiguous tensors to float32 rounding
    (another summation order)."""
    trained, experience = _after_one_experience(cls, True, False, **kwargs)
    plain = cls(2, 2, batch_size=16, channels_last=False, fused_adam=False, **kwargs)
    plain.load_state_dict(trained.state_dict())  # the same values in contiguous tensors
    assert all(m.weight.is_contiguous() for m in plain.model.modules() if isinstance(m, torch.nn.Conv2d))
    x, y = next(iter(torch.utils.data.DataLoader(experience.train, batch_size=16)))
    results = []
    for strategy in (trained, plain):
        strategy.begin_experience(experience)
        strategy.set_train_mode()
        strategy.generator.manual_seed(1)  # the same replay sample
        loss, _ = strategy.loss(x, y, experience.task_id)
        extra = strategy.penalty()
        loss = loss if extra is None else loss + extra
        strategy.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        results.append((loss.detach(), [p.grad for p in strategy.model.parameters()]))
    (loss_cl, grads_cl), (loss_plain, grads_plain) = results
    torch.testing.assert_close(loss_cl, loss_plain, rtol=1e-5, atol=1e-6)
    for g_cl, g_plain in zip(grads_cl, grads_plain):
        assert (g_cl is None) == (g_plain is None)
        if g_cl is not None:
            torch.testing.assert_close(g_cl, g_plain, rtol=1e-3, atol=1e-5)


def test_fused_adam_takes_the_foreach_step_up_to_rounding():
    fused, plain = (Naive(1, 2, channels_last=False, fused_adam=f) for f in (True, False))
    plain.model.load_state_dict(fused.model.state_dict())
    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(p.shape, generator=gen) for p in fused.model.parameters()]
    for _ in range(3):
        for strategy in (fused, plain):
            for p, g in zip(strategy.model.parameters(), grads):
                p.grad = g.clone()
            strategy.optimizer.step()
    for a, b in zip(fused.model.parameters(), plain.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_latent_replay_resumes_channels_last_state_exactly():
    strategy, experience = _after_one_experience(LatentReplay, True, True, model_cfg=ModelConfig(freeze_depth=2),
                                                 buffer_size=8)
    _train(strategy, experience, steps=1)
    saved = io.BytesIO()
    torch.save(strategy.state_dict(), saved)
    saved.seek(0)
    resumed = LatentReplay(2, 2, batch_size=16, model_cfg=ModelConfig(freeze_depth=2), buffer_size=8,
                           channels_last=True, fused_adam=True)
    resumed.load_state_dict(torch.load(saved, weights_only=False))
    assert torch.equal(resumed.buffer.latents, strategy.buffer.latents)
    x, y = next(iter(torch.utils.data.DataLoader(experience.train, batch_size=16)))
    for s in (strategy, resumed):
        s.generator.manual_seed(2)
    assert strategy.train_step(x, y, 1) == resumed.train_step(x, y, 1)  # bit-identical after a resume
    torch.testing.assert_close(resumed.predict(x, 0), strategy.predict(x, 0), rtol=0, atol=0)


# ---- BN statistics recalibrated at the end of each experience (Naive, EWC) -------------------------------
def _first_bn(strategy):
    return next(m for m in strategy.model.modules() if isinstance(m, torch.nn.BatchNorm2d))


def _bn_state(strategy):
    return {k: v.clone() for k, v in strategy.model.state_dict().items() if "running" in k or "num_batches" in k}


@pytest.mark.parametrize("cls, kwargs", [(Naive, {}), (EWC, {"ewc_lambda": 100.0})])
def test_naive_and_ewc_end_each_experience_with_exact_bn_statistics(cls, kwargs):
    """After end_experience the first BN's running mean is the mean of its inputs over the experience's
    training images (one unshuffled pass, the cumulative average), not the lagging exponential average
    of the training steps; on every experience, not only the first."""
    torch.manual_seed(0)
    stream = tiny_stream(2)
    strategy = cls(2, 2, batch_size=16, **kwargs)
    for experience in stream:
        _train(strategy, experience, steps=1)
        seen = []
        hook = _first_bn(strategy).register_forward_hook(lambda m, args, out: seen.append(args[0].detach()))
        strategy.predict(torch.stack([experience.train[i][0] for i in range(len(experience.train))]), 0)
        hook.remove()
        inputs = torch.cat(seen)  # (N, C, H, W): the first BN's inputs (the stem's convolution)
        torch.testing.assert_close(_first_bn(strategy).running_mean, inputs.mean(dim=(0, 2, 3)), rtol=1e-4,
                                   atol=1e-5)


def test_recalibration_switches_off_and_skips_batch_statistics():
    """recalibrate_bn=False keeps the training steps' running averages (the numbers before it); with
    the authors' batch-statistics BN there is nothing to recalibrate."""
    torch.manual_seed(0)
    stream = tiny_stream(1)
    for strategy in (Naive(1, 2, batch_size=16, recalibrate_bn=False),
                     Naive(1, 2, batch_size=16, model_cfg=ModelConfig(prefix_norm="batch"))):
        _train(strategy, stream[0], steps=1)  # ends with end_experience
        before = _bn_state(strategy)
        strategy.end_experience(stream[0])
        after = _bn_state(strategy)
        assert before.keys() == after.keys()
        assert all(torch.equal(before[k], after[k]) for k in before)
    recalibrated = Naive(1, 2, batch_size=16)  # the same fresh statistics, then recalibrated
    before = _bn_state(recalibrated)["stem.bn.running_mean"]
    recalibrated.end_experience(stream[0])
    assert not torch.equal(before, _bn_state(recalibrated)["stem.bn.running_mean"])
