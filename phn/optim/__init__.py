"""Hypernetwork output regulariser (Eq. 7) and the look-ahead step (Algorithm 1)."""

from phn.optim.lookahead import LookaheadResult, cosine, lookahead_gradients, virtual_step
from phn.optim.regulariser import OutputRegulariser, output_distance

__all__ = ["LookaheadResult", "OutputRegulariser", "cosine", "lookahead_gradients", "output_distance", "virtual_step"]
