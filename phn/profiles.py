"""One switch from smoke to paper scale: every chapter's sizes per ``profile``, in one place.

A notebook's parameters cell holds ``profile = "cpu"`` and its other parameters as ``None`` ("the
profile's"). :func:`configure` turns them into the chapter's typed config: the profile's values, with
every parameter that is not ``None`` replacing its value (``"all"`` for ``max_per_class`` means every
image). The config remembers its profile and what was overridden, so the chapter lists the values that
differ from the profile (:func:`differences`) and the ledger's configuration column names them
(:func:`describe`).

Profiles (:data:`PROFILES`):

- ``smoke``: the test suite's tiny runs (``PHN_SMOKE=1`` selects it, whatever ``profile`` says);
- ``cpu``: the default offline book on a 2-core machine (FashionMNIST and scikit-learn's digits);
- ``gpu``: a GPU machine, FashionMNIST at full size, more epochs and seeds;
- ``paper``: the paper's datasets, streams and buffers, the authors' training settings (100 epochs,
  batch 64, lr 1e-3) and Appendix F's hyperparameters. "The paper's setting" is this profile with
  nothing overridden that the paper fixes (:func:`is_paper_setting`).

The benchmark, ablation and cosine chapters share their runs: their stream and sizes come from one
``shared`` block of each profile, so they coincide by construction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import pandas as pd

from phn.config import ConfigError, from_dict, smoke_enabled
from phn.data.datasets import require_dataset

T = TypeVar("T")
PROFILE_NAMES = ("smoke", "cpu", "gpu", "paper")
ALL = "all"  # a parameter value: every image (max_per_class None)
# What the paper fixes: overriding one of these leaves the paper's setting (seeds, grids and plot
# options are the reader's choice).
PAPER_FIXED = frozenset({
    "stream", "dataset", "pairs", "classes_per_experience", "max_per_class", "max_per_class_test", "epochs",
    "batch_size", "lr", "buffer_size",
})


@dataclass(frozen=True)
class Profile:
    """The sizes of every chapter at one scale.

    Attributes:
        name: one of :data:`PROFILE_NAMES`.
        summary: one line for the book.
        shared: :class:`~phn.experiments.benchmarks.StreamSizes` fields of the benchmark, ablation and
            cosine chapters (their runs coincide).
        sections: per chapter (``benchmarks``, ``ablations``, ``cosine``, ``freeze``, ``noise``,
            ``quickstart``), the fields of its config beyond ``shared``.
    """

    name: str
    summary: str
    shared: Mapping[str, Any]
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def values(self, section: str) -> dict[str, Any]:
        """The profile's field values for ``section``."""
        own = dict(self.sections.get(section, {}))
        return own if section in ("freeze", "noise", "quickstart") else {**self.shared, **own}


_PAPER_GRIDS = {
    "lookup_dims": (4, 8, 16, 32, 64), "lookahead_depths": (0, 1, 2, 3, 4), "order_depths": (0, 1, 2, 3, 4),
    "betas": (0.0, 0.05, 0.5, 5.0), "beta_depths": (4, 2),
}

PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        "smoke", "the test suite: a few images, one epoch, one seed (checks that every cell runs, measures nothing)",
        shared={"stream": "split-fashionmnist", "seeds": (0,), "max_per_class": 20, "max_per_class_test": None,
                "epochs": 1, "batch_size": 16, "buffer_size": 20, "curve_depth": 3, "eval_every": 2, "lr": 1e-3},
        sections={
            "benchmarks": {"strategies": ("Naive", "HN-4", "LR-3", "HN-3")},
            "ablations": {"lookup_dims": (4, 8), "lookahead_depths": (3,), "order_depths": (4,), "betas": (0.0, 0.05),
                          "beta_depths": (4,), "ewc_lambdas": (1.0, 100.0), "ewc_seeds": (100,),
                          "norm_strategies": ("HN-4",), "selection_lrs": (1e-4,), "selection_embeddings": (16,)},
            "cosine": {"depths": (4,)},
            "freeze": {"pairs": ("fashionmnist->fashionmnist",), "depths": (0, 4), "seeds": (0,), "max_per_class": 20,
                       "epochs": 1, "batch_size": 16},
            "noise": {"depths": (2,), "freeze_depth": 2, "seeds": (0,), "max_per_class": 20, "epochs": 1,
                      "eval_every": 2, "batch_size": 16, "buffer_size": 200},
            "quickstart": {"stream": "split-fashionmnist", "class_order": tuple(range(10)), "max_per_class": 50,
                           "epochs": 1},
        }),
    "cpu": Profile(
        "cpu", "the offline book on a 2-core CPU: FashionMNIST and digits at the sizes of the convergence study",
        # The sizing study's sizes (500 training images per class, batch 32, 8 epochs: 256 Adam updates
        # per two-class experience, where HN-k reaches its plateau; benchmarks/results/convergence), 3
        # seeds, 600 test images per class (one accuracy's standard error at p = 0.5: 1.4 points).
        # Grid points beyond the budget are opt-in parameters, in the book issue's order: the ablations
        # beyond Tables 4 and 5, Table 2's depths 1 and 3, freeze depths, noise depths. The benchmark
        # chapter being still over its budget with every remaining run (884 s of runs per seed on a
        # machine at 366-382 img/s, seed 4 of the second seed set trained with the full grid: about
        # 27 min at 600 img/s), also: EWC and Figure 8's LR-3 with c = 0 (no claim rests on them), Figure 8
        # with its depth-3 runs, and LR-2 (the cheaper LR-4 pairs HN-4, which the ablation and cosine
        # chapters train anyway; HN-2 stays for Table 2's HN-2 against HN-F). Depth 3 is opt-in in
        # Table 4 too.
        shared={"stream": "split-fashionmnist", "seeds": (0, 1, 2), "max_per_class": 500, "max_per_class_test": 600,
                "epochs": 8, "batch_size": 32, "buffer_size": 20, "curve_depth": 3, "eval_every": 50, "lr": 1e-3},
        sections={
            "benchmarks": {"strategies": ("Naive", "LR-4", "HN-2", "HN-4", "HN-F"), "figure8": False,
                           "curve_without_replay": False},
            "ablations": {"lookahead_depths": (0, 2, 4), "order_depths": (4,), "lookup_dims": (), "betas": (),
                          "ewc_lambdas": (), "norm_strategies": ()},
            # Figure 4's models only (the fine-tuned network), 16 epochs (500 updates per five-class
            # FashionMNIST experience): the chapter's study (benchmarks/results/convergence-freeze) has
            # them gaining up to 9 points from 8 to 16 epochs and up to 8 from 16 to 32 (twice the
            # chapter's time, beyond its budget); HN-k, which Figure 4 does not run, is opt-in: it gains
            # as much from 8 to 16 epochs and would double the chapter's time
            "freeze": {"depths": (0, 4), "strategies": ("lr",), "seeds": (0, 1, 2), "max_per_class": 200,
                       "max_per_class_test": 600, "epochs": 16, "batch_size": 32},
            # 8 epochs: the chapter's study (benchmarks/results/convergence-noise) has HN-2 gaining 8
            # points from 8 to 16 epochs on a tuning seed, and 16 would take the chapter beyond its budget
            "noise": {"depths": (2,), "freeze_depth": 2, "seeds": (0, 1, 2), "max_per_class": 500,
                      "max_per_class_test": 600, "epochs": 8,
                      "eval_every": 50, "batch_size": 32, "buffer_size": 100},
            "quickstart": {"stream": "split-fashionmnist", "class_order": tuple(range(10)), "max_per_class": 1000,
                           "epochs": 3},
        }),
    "gpu": Profile(
        "gpu", "a GPU machine: FashionMNIST at full size, 20 epochs per experience, 5 seeds (not yet run)",
        shared={"stream": "split-fashionmnist", "seeds": (0, 1, 2, 3, 4), "max_per_class": None,
                "max_per_class_test": ALL, "epochs": 20, "batch_size": 64, "buffer_size": 1200, "curve_depth": 3,
                "eval_every": 200, "lr": 1e-3},
        sections={
            "freeze": {"seeds": (0, 1, 2, 3, 4), "max_per_class": None, "epochs": 20, "batch_size": 64},
            "noise": {"seeds": (0, 1, 2, 3, 4), "max_per_class": None, "epochs": 20, "eval_every": 200,
                      "batch_size": 64, "buffer_size": 960},
            "quickstart": {"stream": "split-fashionmnist", "class_order": tuple(range(10)), "max_per_class": None,
                           "epochs": 10},
        }),
    "paper": Profile(
        "paper", "the paper: CIFAR-100 / CIFAR-10 / GTSRB / SVHN, 100 epochs, batch 64, lr 1e-3, buffer 200, 3 seeds",
        shared={"stream": "split-cifar100", "seeds": (0, 1, 2), "max_per_class": None, "max_per_class_test": ALL,
                "epochs": 100, "batch_size": 64, "buffer_size": 200, "curve_depth": 3, "eval_every": 200, "lr": 1e-3},
        sections={
            "ablations": _PAPER_GRIDS,
            "cosine": {"depths": (4,)},
            "freeze": {"pairs": ("cifar10->cifar100", "gtsrb->cifar100", "svhn->fashionmnist"), "depths": (0, 1, 2, 3, 4),
                       "seeds": (0, 1, 2), "classes_per_experience": 5, "max_per_class": None, "epochs": 100,
                       "batch_size": 64},
            "noise": {"dataset": "cifar100", "depths": (2, 3, 4), "freeze_depth": 2, "seeds": (0, 1, 2),
                      "max_per_class": None, "epochs": 100, "eval_every": 200, "batch_size": 64, "buffer_size": 200},
            "quickstart": {"stream": "split-cifar100", "class_order": None, "max_per_class": None, "epochs": 100},
        }),
}


class Profiled:
    """What a chapter config made by :func:`configure` shares: its ``section`` of the profiles (a
    ClassVar), the fields ``profile`` and ``overridden`` (declared by the dataclass), and the paper's
    setting. The dataclass calls :meth:`check_profile` in ``__post_init__``."""

    section: ClassVar[str]
    profile: str
    overridden: tuple[str, ...]

    def check_profile(self) -> None:
        """Raise :class:`ConfigError` (one line naming the valid profiles) for an unknown ``profile``."""
        if self.profile not in PROFILE_NAMES:
            raise ConfigError(f"{type(self).__name__}.profile: unknown profile {self.profile!r}; valid profiles: "
                              f"{', '.join(PROFILE_NAMES)}")

    def check_test_size(self) -> None:
        """Raise :class:`ConfigError` (one line) unless ``max_per_class_test`` is a positive integer,
        ``"all"`` (the whole test set) or None (as ``max_per_class``)."""
        cap = getattr(self, "max_per_class_test", None)
        if cap not in (None, ALL) and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ConfigError(f"{type(self).__name__}.max_per_class_test must be a positive integer, 'all' or None, "
                              f"got {cap!r}")

    @property
    def paper_setting(self) -> bool:
        """Profile ``paper`` with nothing overridden that the paper fixes (:func:`is_paper_setting`)."""
        return is_paper_setting(self)


def resolve(name: str) -> Profile:
    """The profile called ``name``; under the test suite (``PHN_SMOKE=1``) always ``smoke``.

    Raises:
        ConfigError: one line naming the valid profiles, for an unknown name.
    """
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILE_NAMES)}")
    return PROFILES["smoke"] if smoke_enabled() else PROFILES[name]


def _parameter(value: Any) -> Any:
    value = None if value == ALL else value
    return tuple(value) if isinstance(value, list) else value


def values(section: str, profile: str, parameters: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The field values of chapter ``section`` at ``profile`` with every parameter that is not None
    in their place (``"all"``: None, every image), and the sorted names of those that differ from
    the profile's."""
    base = resolve(profile).values(section)
    given = {k: _parameter(v) for k, v in (parameters or {}).items() if v is not None}
    overridden = tuple(sorted(k for k, v in given.items() if k not in base or v != _parameter(base[k])))
    return {**base, **given}, overridden


def configure(cls: type[T], profile: str, parameters: Mapping[str, Any] | None = None, require_data: bool = True) -> T:
    """The typed config of the chapter ``cls.section`` at ``profile`` (:func:`values`). Unknown
    parameters and wrong types fail as :func:`phn.config.from_dict` does; ``cls`` has the fields
    ``profile`` and ``overridden``. With ``require_data`` every dataset the config reads
    (``cfg.datasets``) must be on this machine, so a chapter without its data stops in its first
    cells with the loader's message (the files expected and how to obtain them).

    Example:
        >>> from phn.experiments.benchmarks import BenchmarkConfig
        >>> configure(BenchmarkConfig, "cpu", {"epochs": 99}).overridden
        ('epochs',)
    """
    merged, overridden = values(cls.section, profile, parameters)  # type: ignore[attr-defined]
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(merged) - names)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown parameter(s) {unknown}; known: {sorted(names)}")
    base = resolve(profile).values(cls.section)  # type: ignore[attr-defined]
    overridden = tuple(k for k in overridden if k in base or merged[k] != _parameter(_default(cls, k)))
    cfg = from_dict(cls, {**merged, "profile": resolve(profile).name, "overridden": overridden})
    if require_data:
        for name in cfg.datasets:  # type: ignore[attr-defined]
            require_dataset(name)
    return cfg


def _default(cls: type, name: str) -> Any:
    spec = {f.name: f for f in dataclasses.fields(cls)}[name]  # type: ignore[arg-type]
    if spec.default is not dataclasses.MISSING:
        return spec.default
    return spec.default_factory() if spec.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]


def differences(cfg: Any) -> pd.DataFrame:
    """The values of ``cfg`` (from :func:`configure`) that differ from its profile's: columns
    parameter, profile, this run (empty when nothing was overridden)."""
    base = PROFILES[cfg.profile].values(type(cfg).section)
    rows = [{"parameter": name, "profile": _shown(base.get(name, _default(type(cfg), name))),
             "this run": _shown(getattr(cfg, name))} for name in cfg.overridden]
    return pd.DataFrame(rows, columns=["parameter", "profile", "this run"])


def _shown(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def describe(cfg: Any) -> str:
    """A chapter config as a short line: its profile and the values that differ from it, e.g.
    ``"profile cpu; epochs=6 (profile: 4)"``."""
    changed = differences(cfg)
    text = "; ".join(f"{r.parameter}={r._3} (profile: {r.profile})" for r in changed.itertuples())
    return f"profile {cfg.profile}" + (f"; {text}" if text else "")


def is_paper_setting(cfg: Any) -> bool:
    """Profile ``paper`` with nothing overridden that the paper fixes (:data:`PAPER_FIXED`)."""
    return cfg.profile == "paper" and not set(cfg.overridden) & PAPER_FIXED


def profile_table() -> pd.DataFrame:
    """Every profile's shared sizes, one row per profile (the book's profile page)."""
    rows = [{"profile": p.name, **{k: _shown(v) for k, v in p.shared.items()}, "what": p.summary}
            for p in PROFILES.values()]
    return pd.DataFrame(rows)


__all__ = ["ALL", "PAPER_FIXED", "PROFILES", "PROFILE_NAMES", "Profile", "Profiled", "configure", "describe", "differences",
           "is_paper_setting", "profile_table", "resolve", "values"]
