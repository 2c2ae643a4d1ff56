"""Task-conditioned hypernetwork: embedding table, MLP trunk and per-tensor heads (Appendix A)."""

from phn.hyper.heads import ConvHead, LinearHead, TaskTable, make_head
from phn.hyper.hypernet import HyperNetwork

__all__ = ["ConvHead", "HyperNetwork", "LinearHead", "TaskTable", "make_head"]
