"""The runner: results, atomic run directory, results cache, kill-and-resume."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from phn.config import HyperConfig, ModelConfig, StrategyConfig, TrainConfig
from phn.results import Results
from phn.rundir import RunDirectoryError
from phn.strategies import make_strategy
from phn.train import evaluation_order, run
from tiny import tiny_stream

CFG = TrainConfig(epochs=2, batch_size=16, eval_batch_size=8, seed=3)


def _strategy(name, k=2, seed=3):
    torch.manual_seed(seed)
    return make_strategy(StrategyConfig(name=name, buffer_size=6), num_tasks=3, num_classes=2,
                         model_cfg=ModelConfig(freeze_depth=k), hyper_cfg=HyperConfig(reg_tasks=1),
                         batch_size=16, seed=seed)


@pytest.mark.parametrize("name", ["naive", "ewc", "lr", "hn"])
def test_each_strategy_runs_end_to_end(name, tmp_path):
    stream = tiny_stream(3)
    results = run(stream, _strategy(name), CFG, out_dir=tmp_path, config={"strategy": name})
    acc = results.acc
    assert acc.shape == (3, 3)
    assert np.isnan(acc[np.triu_indices(3, 1)]).all() and not np.isnan(acc[np.tril_indices(3)]).any()
    assert ((acc[np.tril_indices(3)] >= 0) & (acc[np.tril_indices(3)] <= 1)).all()
    assert (results.train_time > 0).all() and (results.peak_memory > 0).all()
    assert results.parameter_count > 0
    assert len(results.steps) == 3 * 2 * 2  # experiences x epochs x batches
    for name_ in ("config.json", "metrics.json", "accuracy.csv", "steps.csv", "checkpoint.pt"):
        assert (tmp_path / name_).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"
    loaded = Results.load(tmp_path)
    np.testing.assert_array_equal(loaded.acc, acc)
    assert json.loads((tmp_path / "config.json").read_text())["versions"]["torch"] == torch.__version__


def test_results_cache_returns_saved_results_without_training(tmp_path):
    stream = tiny_stream(2)
    first = run(stream, _strategy("naive"), CFG, out_dir=tmp_path, config={"a": (1, 2)})

    class Exploding:
        device = torch.device("cpu")

        def __getattr__(self, name):
            raise AssertionError("the cache should have answered")

    cached = run(stream, Exploding(), CFG, out_dir=tmp_path, config={"a": (1, 2)})
    np.testing.assert_array_equal(cached.acc, first.acc)
    assert cached.cached and not first.cached
    with pytest.raises(RunDirectoryError, match=r"another configuration's run \(a: \[1, 2\] -> \[1, 3\]\)"):
        run(stream, Exploding(), CFG, out_dir=tmp_path, config={"a": (1, 3)})  # never mixed into one directory
    with pytest.raises(AssertionError, match="cache"):
        run(stream, Exploding(), CFG, out_dir=tmp_path, config={"a": (1, 3)}, overwrite=True)  # trains


class Killed(Exception):
    pass


@pytest.mark.parametrize("name", ["naive", "ewc", "lr", "hn"])
def test_kill_and_resume_gives_identical_accuracy_matrix(name, tmp_path):
    stream = tiny_stream(3)
    reference = run(stream, _strategy(name), CFG, config={"s": name})

    strategy = _strategy(name)
    original_step, calls = strategy.train_step, []

    def dying_step(x, y, task_id):
        calls.append(task_id)
        if task_id == 2 and calls.count(2) == 2:  # mid-way through the last experience
            raise Killed
        return original_step(x, y, task_id)

    strategy.train_step = dying_step
    with pytest.raises(Killed):
        run(stream, strategy, CFG, out_dir=tmp_path, config={"s": name})
    assert (tmp_path / "checkpoint.pt").exists() and not (tmp_path / "metrics.json").exists()

    resumed = run(stream, _strategy(name, seed=99), CFG, out_dir=tmp_path, resume=True, config={"s": name})
    np.testing.assert_array_equal(resumed.acc, reference.acc)  # bit-identical on CPU
    assert len(resumed.steps) == len(reference.steps)
    pd.testing.assert_frame_equal(resumed.diagnostics, reference.diagnostics)  # HN: old tasks' drift


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path):
    stream = tiny_stream(2)
    run(stream, _strategy("naive"), CFG, out_dir=tmp_path, config={"a": 1})
    (tmp_path / "metrics.json").unlink()
    with pytest.raises(RunDirectoryError, match=r"another configuration.*a: 1 -> 2"):
        run(stream, _strategy("naive"), CFG, out_dir=tmp_path, resume=True, config={"a": 2})


def test_evaluation_orders():
    labels = [0, 1, 0, 1, 1, 0]
    assert evaluation_order(labels, "sorted", 0) == [0, 2, 5, 1, 3, 4]
    assert evaluation_order(labels, "index", 0) == [0, 1, 2, 3, 4, 5]
    shuffled = evaluation_order(labels, "interleaved", 0)
    assert sorted(shuffled) == list(range(6)) and shuffled == evaluation_order(labels, "interleaved", 0)
    with pytest.raises(ValueError):
        evaluation_order(labels, "random", 0)


def test_batch_statistics_bn_makes_accuracy_depend_on_evaluation_order():
    """The authors' batch-statistics BN: class-sorted test batches change predictions;
    with running statistics (our default) the order changes nothing."""
    stream = tiny_stream(1, per_class=32)
    accs = {}
    for prefix_norm in ("running", "batch"):
        for order in ("interleaved", "sorted"):
            torch.manual_seed(0)
            strategy = make_strategy(StrategyConfig(name="naive"), 1, 2, ModelConfig(prefix_norm=prefix_norm))
            cfg = TrainConfig(epochs=3, batch_size=16, eval_batch_size=8, eval_order=order)
            accs[prefix_norm, order] = run(stream, strategy, cfg).acc[0, 0]
    assert accs["running", "interleaved"] == accs["running", "sorted"]
    assert accs["batch", "interleaved"] != accs["batch", "sorted"]


@pytest.mark.parametrize("name,prefix_norm", [("lr", "running"), ("hn", "running"), ("hn", "batch")])
def test_latent_cache_changes_no_accuracy(name, prefix_norm):
    stream = tiny_stream(3)
    accs = []
    for cache_latents in (False, True):
        torch.manual_seed(3)
        strategy = make_strategy(StrategyConfig(name=name, buffer_size=6), 3, 2,
                                 ModelConfig(freeze_depth=2, prefix_norm=prefix_norm), HyperConfig(reg_tasks=1),
                                 batch_size=16, seed=3)
        accs.append(run(stream, strategy, CFG, cache_latents=cache_latents).acc)
    np.testing.assert_array_equal(accs[0], accs[1])


def test_latent_cache_respects_its_budget():
    from phn.train import LatentCache

    cache = LatentCache(max_floats=10)
    cache.add(("sorted", 0), [(torch.zeros(2, 4), torch.zeros(2))])
    cache.add(("sorted", 1), [(torch.zeros(2, 4), torch.zeros(2))])
    assert list(cache.batches) == [("sorted", 0)] and cache.floats == 8


def test_latent_cache_is_used_once_the_prefix_is_frozen():
    stream = tiny_stream(3)
    strategy = _strategy("hn")
    strategy.predict = None  # frozen after experience 1, so every evaluation goes through the latents
    prefix_calls = []
    original = strategy.frozen_latents
    strategy.frozen_latents = lambda x: prefix_calls.append(len(x)) or original(x)
    run(stream, strategy, CFG)
    # each test set passes through the prefix once (3 sets of 16 images), though evaluated 3, 2, 1 times
    assert sum(prefix_calls) == 3 * 16


def _hn(prefix_norm):
    torch.manual_seed(3)
    return make_strategy(StrategyConfig(name="hn"), 3, 2, ModelConfig(freeze_depth=2, prefix_norm=prefix_norm),
                         HyperConfig(reg_tasks=1), batch_size=16, seed=3)


def test_extra_eval_orders_evaluate_the_same_trained_model(tmp_path):
    """One run, three test orders: each matrix equals a run evaluated under that order alone."""
    stream = tiny_stream(3, per_class=32)
    cfg = TrainConfig(epochs=1, batch_size=16, eval_batch_size=8, seed=3, eval_order="index",
                      extra_eval_orders=("interleaved", "sorted"))
    results = run(stream, _hn("batch"), cfg, out_dir=tmp_path, config={"a": 1})
    assert list(results.acc_by_order) == ["index", "interleaved", "sorted"]
    np.testing.assert_array_equal(results.acc, results.acc_by_order["index"])
    for order in ("interleaved", "sorted"):
        alone = run(stream, _hn("batch"), TrainConfig(epochs=1, batch_size=16, eval_batch_size=8, seed=3,
                                                       eval_order=order))
        np.testing.assert_array_equal(results.acc_by_order[order], alone.acc)
    assert not np.array_equal(results.acc_by_order["sorted"], results.acc_by_order["index"])  # batch statistics
    loaded = Results.load(tmp_path)
    for order, acc in results.acc_by_order.items():
        np.testing.assert_array_equal(loaded.acc_by_order[order], acc)
    table = loaded.summary_by_order()
    assert list(table.order) == ["index", "interleaved", "sorted"] and {"aca", "forgetting"} <= set(table)

    running = run(stream, _hn("running"), cfg)
    for acc in running.acc_by_order.values():  # running statistics: the order changes nothing
        np.testing.assert_array_equal(acc, running.acc)


def test_diagnostics_are_saved_and_stale_files_removed(tmp_path):
    stream = tiny_stream(3)
    results = run(stream, _hn("running"), CFG, out_dir=tmp_path, config={"a": 1})
    diag = results.diagnostics
    # after experience 1 (index 1) task 0 is compared, after experience 2 tasks 0 and 1
    assert sorted(set(zip(diag.experience, diag.task))) == [(1, 0), (2, 0), (2, 1)]
    assert (diag.sq_distance > 0).all() and (diag.sq_norm > 0).all()
    pd.testing.assert_frame_equal(Results.load(tmp_path).diagnostics, diag)
    quiet = TrainConfig(epochs=2, batch_size=16, eval_batch_size=8, seed=3, log_steps=False)
    run(stream, _strategy("naive"), quiet, out_dir=tmp_path, config={"a": 2}, overwrite=True)  # no steps, no diagnostics
    assert not (tmp_path / "steps.csv").exists() and not (tmp_path / "diagnostics.csv").exists()


@pytest.mark.parametrize("unit,every", [("step", 1), ("epoch", 1)])
def test_accuracy_over_time_changes_no_training(unit, every, tmp_path):
    """eval_every evaluates the seen experiences during training (curves.csv) without changing a
    single trained weight: the accuracy matrix equals the run without it."""
    stream = tiny_stream(3)
    plain = run(stream, _strategy("lr"), CFG)
    cfg = TrainConfig(epochs=2, batch_size=16, eval_batch_size=8, seed=3, eval_every=every, eval_unit=unit)
    results = run(stream, _strategy("lr"), cfg, out_dir=tmp_path, config={"a": 1})
    np.testing.assert_array_equal(results.acc, plain.acc)
    curves = results.curves
    assert list(curves.columns) == ["trained_experience", "epoch", "step", "global_step", "evaluated_experience",
                                    "accuracy"]
    steps_per_experience = 2 * 2  # epochs x batches
    points = {"step": [0, 1, 2, 3, 4], "epoch": [0, 2, 4]}[unit]  # start, every unit, the end (after step 4)
    for i in range(3):
        mine = curves[curves.trained_experience == i]
        assert sorted(mine.step.unique()) == points
        assert set(mine.evaluated_experience) == set(range(i + 1))
        end = mine[mine.step == steps_per_experience].set_index("evaluated_experience").accuracy
        np.testing.assert_array_equal(end.sort_index().to_numpy(), results.acc[i, : i + 1])
        assert (mine.global_step == mine.step + i * steps_per_experience).all()
    pd.testing.assert_frame_equal(Results.load(tmp_path).curves, curves)


def test_accuracy_over_time_survives_kill_and_resume(tmp_path):
    stream = tiny_stream(3)
    cfg = TrainConfig(epochs=2, batch_size=16, eval_batch_size=8, seed=3, eval_every=2)
    reference = run(stream, _strategy("hn"), cfg)
    strategy = _strategy("hn")
    original_step, calls = strategy.train_step, []

    def dying_step(x, y, task_id):
        calls.append(task_id)
        if task_id == 2:
            raise Killed
        return original_step(x, y, task_id)

    strategy.train_step = dying_step
    with pytest.raises(Killed):
        run(stream, strategy, cfg, out_dir=tmp_path, config={"c": 1})
    resumed = run(stream, _strategy("hn", seed=99), cfg, out_dir=tmp_path, resume=True, config={"c": 1})
    pd.testing.assert_frame_equal(resumed.curves, reference.curves)


def _lr(depth, coef=0.0):
    torch.manual_seed(3)
    return make_strategy(StrategyConfig(name="lr", buffer_size=0 if coef == 0 else 6, replay_coef=coef), 3, 2,
                         ModelConfig(freeze_depth=depth), batch_size=16, seed=3)


def test_start_from_another_depths_first_experience_equals_training_it(tmp_path):
    """Latent replay with c = 0 trains experience 1 identically at every freeze depth, so a depth sweep
    may train it once: LR-2 continued from LR-4's checkpoint after experience 1 is bit-identical to
    LR-2 trained from scratch."""
    from phn.train import kept_checkpoint

    stream = tiny_stream(3)
    source = run(stream, _lr(4), CFG, out_dir=tmp_path / "lr4", config={"k": 4}, keep_checkpoints=(0,))
    kept = tmp_path / "lr4" / kept_checkpoint(0)
    assert kept.exists() and not (tmp_path / "lr4" / kept_checkpoint(1)).exists()
    scratch = run(stream, _lr(2), CFG, config={"k": 2})
    forked = run(stream, _lr(2), CFG, out_dir=tmp_path / "lr2", config={"k": 2}, start_from=kept)
    np.testing.assert_array_equal(forked.acc, scratch.acc)
    assert forked.train_time[0] == source.train_time[0]  # experience 1 was not trained again
    saved = json.loads((tmp_path / "lr2" / "config.json").read_text())
    assert saved["start_from"]["experience"] == 0 and len(saved["start_from"]["config"]) == 12
    with pytest.raises(RunDirectoryError, match="start_from"):  # not the same run: never mixed in one directory
        run(stream, _lr(2), CFG, out_dir=tmp_path / "lr2", config={"k": 2})
    again = run(stream, _lr(2), CFG, out_dir=tmp_path / "lr2", config={"k": 2}, overwrite=True)  # retrains
    assert json.loads((tmp_path / "lr2" / "config.json").read_text()).get("start_from") is None
    np.testing.assert_array_equal(again.acc, scratch.acc)


def test_start_from_refuses_other_training_settings(tmp_path):
    from phn.train import kept_checkpoint

    stream = tiny_stream(3)
    run(stream, _lr(4), CFG, out_dir=tmp_path / "a", config={"train": {"epochs": 2}}, keep_checkpoints=(0,))
    with pytest.raises(ValueError, match="other settings"):
        run(stream, _lr(2), CFG, out_dir=tmp_path / "b", config={"train": {"epochs": 3}},
            start_from=tmp_path / "a" / kept_checkpoint(0))
    with pytest.raises(ValueError, match="other evaluation orders"):
        run(stream, _lr(2), TrainConfig(epochs=2, batch_size=16, eval_batch_size=8, seed=3,
                                        extra_eval_orders=("sorted",)),
            config={"train": {"epochs": 2}}, start_from=tmp_path / "a" / kept_checkpoint(0))
