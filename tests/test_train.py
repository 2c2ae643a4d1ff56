"""The runner: results, atomic run directory, results cache, kill-and-resume."""

import json

import numpy as np
import pytest
import torch

from phn.config import HyperConfig, ModelConfig, StrategyConfig, TrainConfig
from phn.results import Results
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
    with pytest.raises(AssertionError, match="cache"):
        run(stream, Exploding(), CFG, out_dir=tmp_path, config={"a": (1, 3)})  # another config trains


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


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path):
    stream = tiny_stream(2)
    run(stream, _strategy("naive"), CFG, out_dir=tmp_path, config={"a": 1})
    (tmp_path / "metrics.json").unlink()
    with pytest.raises(ValueError, match="different configuration"):
        run(stream, _strategy("naive"), CFG, out_dir=tmp_path, resume=True, config={"a": 2})


def test_evaluation_orders():
    labels = [0, 1, 0, 1, 1, 0]
    assert evaluation_order(labels, "sorted", 0) == [0, 2, 5, 1, 3, 4]
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
    cache.add(0, [(torch.zeros(2, 4), torch.zeros(2))])
    cache.add(1, [(torch.zeros(2, 4), torch.zeros(2))])
    assert list(cache.batches) == [0] and cache.floats == 8


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
