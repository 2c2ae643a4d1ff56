"""phn: Partial Hypernetworks for Continual Learning (Hemati et al., 2023), reproduced.

Sub-packages: ``phn.data`` (datasets, streams), ``phn.models`` (slim ResNet-18),
``phn.hyper`` (hypernetwork), ``phn.optim`` (look-ahead, regulariser),
``phn.strategies`` (Naive, EWC, latent replay, partial HN), ``phn.train`` (runner),
``phn.metrics`` and ``phn.experiments`` (one function per paper section).
"""

__version__ = "0.1.0"
