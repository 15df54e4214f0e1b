"""Privacy accounting of DP-SGD members with Opacus's accountants."""

from __future__ import annotations

__all__ = ["ACCOUNTANTS", "dp_sgd_epsilon"]

#: Renyi orders the RDP accountant minimises over: Opacus's defaults and larger ones.
_RDP_ORDERS = [1 + x / 10 for x in range(1, 100)] + list(range(12, 64)) + list(range(64, 1025, 8))

#: Opacus accountants this package uses: Renyi DP (Mironov 2017; Mironov, Talwar & Zhang
#: 2019) and the privacy random variable accountant (Gopi, Lee & Wutschitz 2021).
ACCOUNTANTS = ("rdp", "prv")


def dp_sgd_epsilon(
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    *,
    accountant: str = "rdp",
) -> float:
    """The epsilon of DP-SGD at ``delta``, from Opacus's accountant.

    ``steps`` steps of the (subsampled) Gaussian mechanism with noise multiplier
    ``noise_multiplier``, each row included in a step with probability ``sample_rate``
    independently of the others (Poisson sampling; ``sample_rate=1`` is every row in every
    step, no subsampling). Neighbouring datasets differ by inserting or deleting one row.

    Parameters
    ----------
    noise_multiplier : float
        The noise's standard deviation over the clipping norm (> 0).
    sample_rate : float
        Probability that a row takes part in a step, in (0, 1].
    steps : int
        Number of steps (>= 1).
    delta : float
        Target delta, in (0, 1).
    accountant : {"rdp", "prv"}, default="rdp"
        Opacus's accountant: ``RDPAccountant`` or ``PRVAccountant``.

    Returns
    -------
    epsilon : float

    Examples
    --------
    One step of the Gaussian mechanism with noise multiplier 5, every row included:

    >>> from sklearn_certify.privacy import dp_sgd_epsilon
    >>> round(dp_sgd_epsilon(5.0, 1.0, 1, 1e-5), 3)
    0.795
    >>> dp_sgd_epsilon(5.0, 1.0, 10, 1e-5) > dp_sgd_epsilon(5.0, 0.1, 10, 1e-5)
    True
    """
    import math

    if accountant not in ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {accountant!r}.")
    if not (math.isfinite(noise_multiplier) and noise_multiplier > 0):
        raise ValueError(
            f"noise_multiplier must be > 0 for a privacy guarantee, got {noise_multiplier}."
        )
    if not 0 < sample_rate <= 1:
        raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}.")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps}.")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}.")
    import warnings

    import numpy as np
    from opacus.accountants import PRVAccountant, RDPAccountant

    tracker = RDPAccountant() if accountant == "rdp" else PRVAccountant()
    tracker.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    with warnings.catch_warnings(), np.errstate(divide="ignore"):
        # sample_rate=1 takes log(1 - q) = -inf inside the PRV accountant, harmlessly
        warnings.simplefilter("ignore", RuntimeWarning)
        if accountant == "prv":
            return float(tracker.get_epsilon(delta=float(delta)))
        # Opacus's default orders end at 63; large noise needs larger ones (any order is
        # a valid bound, more orders only tighten it)
        return float(tracker.get_epsilon(delta=float(delta), alphas=_RDP_ORDERS))
