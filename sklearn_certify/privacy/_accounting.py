"""Privacy accounting of DP-SGD members with Opacus's accountants."""

from __future__ import annotations

__all__ = ["ACCOUNTANTS", "dp_sgd_epsilon", "member_privacy"]

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
    import warnings

    from sklearn_certify._validation import check_open_unit, check_positive, check_scalar_int

    if accountant not in ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {accountant!r}.")
    noise_multiplier = check_positive("noise_multiplier", noise_multiplier)
    if not 0 < check_positive("sample_rate", sample_rate) <= 1:
        raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}.")
    steps = check_scalar_int("steps", steps, min_value=1)
    delta = check_open_unit("delta", delta)

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


def member_privacy(ensemble, delta: float, *, accountant: str = "rdp") -> tuple[float, float]:
    """The ``(epsilon, delta)`` of every trained member of a fitted certified ensemble.

    A member's training is differentially private, with a guarantee an Opacus accountant
    covers, when it is DP-SGD with a fixed divisor in which every step uses every one of the
    member's rows: a :class:`~sklearn_certify.ensemble.CertifiedNeuralNetClassifier` with
    ``training_step=DPSGDStep(..., expected_batch_size=B)`` and a ``batch_size`` at least
    its number of rows, or an :class:`OpacusNeuralNetClassifier` with such a batch size.
    Each member is then ``(epsilon, delta)``-DP with respect to its own training rows
    (``max_epochs`` Gaussian mechanisms, sample rate 1). Shuffled mini-batches are not a
    sampling these accountants cover, so any other member is refused with the reason.

    Parameters
    ----------
    ensemble : BaseCertifiedEnsemble
        A fitted ensemble (DPA, RAB, bagging, ...).
    delta : float
        Target delta, in (0, 1).
    accountant : {"rdp", "prv"}, default="rdp"
        Opacus's accountant.

    Returns
    -------
    epsilon, delta : float

    Examples
    --------
    >>> import torch
    >>> from sklearn_certify import RABClassifier
    >>> from sklearn_certify.datasets import load_digits
    >>> from sklearn_certify.ensemble import CertifiedNeuralNetClassifier, DPSGDStep
    >>> from sklearn_certify.privacy import member_privacy
    >>> X, y = load_digits(digits=(0, 1), split="train")
    >>> net = CertifiedNeuralNetClassifier(
    ...     torch.nn.Linear, module__in_features=64, module__out_features=2,
    ...     criterion=torch.nn.CrossEntropyLoss, max_epochs=5, lr=1.0, batch_size=len(X),
    ...     training_step=DPSGDStep(1.0, 20.0, expected_batch_size=len(X)))
    >>> rab = RABClassifier(net, n_estimators=4, sigma=0.5, alpha=0.1, random_state=0)
    >>> eps, delta = member_privacy(rab.fit(X, y), 1e-5)
    >>> round(eps, 2), delta
    (0.42, 1e-05)
    """
    from sklearn_certify.ensemble import CertifiedNeuralNetClassifier, DPSGDStep
    from sklearn_certify.privacy._opacus_net import OpacusNeuralNetClassifier

    members = ensemble.estimators_
    rows = ensemble.member_rows_
    settings = set()
    for member, member_rows in zip(members, rows, strict=True):
        if not hasattr(member, "module_"):
            continue  # a constant or abstaining stand-in: trained on nothing
        n_rows = len(member_rows)
        if isinstance(member, OpacusNeuralNetClassifier):
            noise, steps = float(member.noise_multiplier), int(member.max_epochs)
        elif isinstance(member, CertifiedNeuralNetClassifier) and isinstance(
            member.training_step, DPSGDStep
        ):
            step = member.training_step
            if step.expected_batch_size is None:
                raise ValueError(
                    "the members' DPSGDStep divides by the batch's row count, which depends on "
                    "the data; give it expected_batch_size for a privacy guarantee."
                )
            noise, steps = step.noise_multiplier, int(member.max_epochs)
        else:
            raise ValueError(
                f"the members ({type(member).__name__}) are not trained with DP-SGD; use "
                "CertifiedNeuralNetClassifier(training_step=DPSGDStep(...)) or "
                "DPVoteClassifier."
            )
        if member.batch_size < n_rows:
            raise ValueError(
                f"a member trains on {n_rows} rows in batches of {member.batch_size}: shuffled "
                "mini-batches are not a sampling Opacus's accountants cover; use a batch_size "
                "of at least the members' rows (every row in every step)."
            )
        settings.add((noise, steps))
    if not settings:
        raise ValueError("no member was trained, so none has a privacy guarantee to report.")
    epsilon = max(dp_sgd_epsilon(n, 1.0, t, delta, accountant=accountant) for n, t in settings)
    return epsilon, float(delta)
