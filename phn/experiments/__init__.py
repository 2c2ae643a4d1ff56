"""One function per paper experiment, each returning tidy pandas tables (notebooks call, plot, comment)."""

from phn.experiments.compare import Comparison, compare, with_overrides

__all__ = ["Comparison", "compare", "with_overrides"]
