"""Gaussian noise keyed by (member seed, row, feature): the same draw wherever it is computed.

Training-set smoothing needs noise ``d_m[i]`` for member ``m`` and training row ``i`` that is a
function of ``(seed_, m, i)`` alone: member ``m`` must see the same noisy copy of row
``i`` in every epoch, on every engine and device, whatever other members or rows are in the
batch (the user guide's rule "one noisy copy per member"). torch's generators are streams:
what a draw returns depends on everything drawn before it. So the noise is computed from a
counter-based hash instead: each (seed, row, pair of features) key is hashed to two independent
32-bit uniforms (the PCG output permutation of Jarzynski & Olano, "Hash Functions for GPU
Rendering", 2020, nested over the key's words), and the Box-Muller transform turns them into
two independent standard normal draws, one per feature of the pair. The hashing is integer
arithmetic on int64 tensors, so the uniforms are identical on CPU and GPU; the transform runs
in float64.
"""

from __future__ import annotations

from sklearn_certify._keyed import keyed_draws, keyed_normal

__all__ = ["GaussianNoiseView", "keyed_draws", "keyed_normal"]


class GaussianNoiseView:
    """Member view adding ``sigma`` times keyed Gaussian noise: one noisy copy per member.

    ``view(X, row_ids, member_ids, seeds)`` returns ``X + sigma * keyed_normal(seeds,
    row_ids, ...)``: member ``m`` sees row ``i`` as ``X[i] + d_m[i]`` with ``d_m[i]`` a
    function of its seed (hence of ``(seed_, m)``) and ``i`` only, the same in every
    epoch and for both engines.

    Parameters
    ----------
    sigma : float
        Noise standard deviation, in the units of the features.

    Examples
    --------
    >>> import torch
    >>> from sklearn_certify.smoothing import GaussianNoiseView
    >>> view = GaussianNoiseView(0.5)
    >>> X = torch.zeros(2, 3, 4); rows = torch.arange(3).repeat(2, 1)
    >>> out = view(X, rows, torch.tensor([0, 1]), torch.tensor([11, 12]))
    >>> out.shape, bool(torch.equal(out, view(X, rows, torch.tensor([0, 1]),
    ...                                         torch.tensor([11, 12]))))
    (torch.Size([2, 3, 4]), True)
    """

    def __init__(self, sigma: float):
        self.sigma = float(sigma)

    def __call__(self, X, row_ids, member_ids, seeds):
        if row_ids is None:
            raise ValueError(
                "GaussianNoiseView keys its noise by training row; it is a training view, not "
                "a test-time one."
            )
        noise = keyed_normal(seeds, row_ids, tuple(X.shape[2:]), dtype=X.dtype)
        return X + self.sigma * noise

    def __repr__(self) -> str:
        return f"GaussianNoiseView(sigma={self.sigma})"
