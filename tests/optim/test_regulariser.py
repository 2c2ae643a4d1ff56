"""Output regulariser (Eq. 7): recorded constants, one batched call, sampling, gradients."""

from __future__ import annotations

import pytest
import torch

from phn.optim.regulariser import OutputRegulariser


def perturb(hnet: torch.nn.Module, scale: float = 0.1, seed: int = 5) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in hnet.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def test_record_is_a_detached_copy(tiny) -> None:
    hnet, reg = tiny.hnet(), OutputRegulariser()
    reg.record(hnet, [0, 1])
    assert all(not v.requires_grad for v in reg.recorded.values())
    before = {k: v.clone() for k, v in reg.recorded.items()}
    perturb(hnet)
    assert all(torch.equal(before[k], reg.recorded[k]) for k in before)
    assert reg.num_floats() == 2 * sum(s.numel() for s in hnet.param_shapes.values())


def test_penalty_matches_per_task_loop_with_one_batched_call(tiny) -> None:
    hnet, reg = tiny.hnet(), OutputRegulariser(reg_tasks=0)
    reg.record(hnet, [0, 1, 2])
    rows = reg.sample(current_task=3)
    assert reg.penalty(hnet, rows).item() == 0.0
    perturb(hnet)
    calls = []
    handle = hnet.register_forward_pre_hook(lambda mod, args: calls.append(args[0].clone()))
    value = reg.penalty(hnet, rows)
    handle.remove()
    assert len(calls) == 1 and calls[0].tolist() == [0, 1, 2]  # one call on the stacked ids
    ref = 0.0
    for j in range(3):  # independent: task by task, tensor by tensor
        current = hnet.task_weights(j)
        ref += sum(((current[n] - reg.recorded[n][j]) ** 2).sum().item() for n in current)
    torch.testing.assert_close(value.item(), ref / 3)


def test_penalty_on_virtual_params_uses_them(tiny) -> None:
    hnet, reg = tiny.hnet(), OutputRegulariser()
    reg.record(hnet, [0, 1])
    rows = reg.sample(current_task=2)
    params = {n: p + 0.1 for n, p in hnet.named_parameters()}
    assert reg.penalty(hnet, rows, params).item() > 0
    assert reg.penalty(hnet, rows).item() == 0.0


def test_old_task_table_rows_get_gradient(tiny) -> None:
    hnet, reg = tiny.hnet(), OutputRegulariser()
    reg.record(hnet, [0, 1])
    perturb(hnet)
    reg.penalty(hnet, reg.sample(current_task=2)).backward()
    for name, p in hnet.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    table = hnet.heads["bn-weight"].table.grad  # (num_tasks, 2)
    assert table[:2].abs().min() > 0 and torch.equal(table[2:], torch.zeros_like(table[2:]))


def test_sampling_excludes_current_task_and_is_reproducible(tiny) -> None:
    hnet, reg = tiny.hnet(num_tasks=8), OutputRegulariser(reg_tasks=3, seed=7)
    reg.record(hnet, list(range(8)))
    state = reg.state_dict()
    draws = [reg.sample(current_task=5) for _ in range(4)]
    assert all(d.numel() == 3 and 5 not in reg.task_ids[d].tolist() and d.unique().numel() == 3 for d in draws)
    assert len({tuple(d.tolist()) for d in draws}) > 1
    reg2 = OutputRegulariser()
    reg2.load_state_dict(state)
    assert all(torch.equal(d, reg2.sample(current_task=5)) for d in draws)
    assert OutputRegulariser(reg_tasks=0).sample(0) is None  # nothing recorded
    reg.reg_tasks = 0
    assert reg.sample(current_task=5).tolist() == [0, 1, 2, 3, 4, 6, 7]


def test_drift_per_task_and_group(tiny) -> None:
    """drift(): per recorded task and tensor group, ||H(e_j) - H*(e_j)||^2 and ||H*(e_j)||^2; the
    groups' distances add up to Eq. 7's term for the task."""
    hnet, reg = tiny.hnet(), OutputRegulariser(reg_tasks=0)
    assert reg.drift(hnet) == []
    reg.record(hnet, [0, 2])
    assert all(row["sq_distance"] == 0 for row in reg.drift(hnet))
    perturb(hnet)
    rows = reg.drift(hnet)
    assert {(r["task"], r["group"]) for r in rows} == {(t, g) for t in (0, 2) for g in ("conv conv", "bn norm", "classifier")}
    for task, row_index in ((0, 0), (2, 1)):
        now, before = hnet.task_weights(task), {k: v[row_index] for k, v in reg.recorded.items()}
        conv = next(r for r in rows if r["task"] == task and r["group"] == "conv conv")
        assert conv["sq_distance"] == pytest.approx(((now["conv.weight"] - before["conv.weight"]) ** 2).sum().item())
        assert conv["sq_norm"] == pytest.approx((before["conv.weight"] ** 2).sum().item())
        total = sum(r["sq_distance"] for r in rows if r["task"] == task)
        single = reg.penalty(hnet, torch.tensor([row_index])).item()
        assert total == pytest.approx(single)
