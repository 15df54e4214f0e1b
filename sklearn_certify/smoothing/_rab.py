"""RAB: randomized smoothing of the training set against backdoors (Weber et al., 2023)."""

from __future__ import annotations

from typing import ClassVar

from sklearn_certify.ensemble import member_seed
from sklearn_certify.smoothing._core import BaseSmoothingEnsemble
from sklearn_certify.smoothing._noise import keyed_normal

__all__ = ["RABClassifier", "TestNoiseView"]


class TestNoiseView:
    """Test-time view adding member ``k``'s fixed noise vector ``u_k`` to every test row.

    ``u_k = sigma * z_k`` with ``z_k`` keyed by the member's ``"test_view"`` seed alone (the
    same vector for every row and call), so the smoothed classifier stays a deterministic
    function of the training set, the seed and the test input.

    Parameters
    ----------
    sigma : float
        Noise standard deviation.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, sigma: float):
        self.sigma = float(sigma)

    def __call__(self, X, row_ids, member_ids, seeds):
        import torch

        rows = torch.zeros((seeds.shape[0], 1), dtype=torch.int64, device=seeds.device)
        noise = keyed_normal(seeds, rows, tuple(X.shape[2:]), dtype=X.dtype)
        return X + self.sigma * noise

    def __repr__(self) -> str:
        return f"TestNoiseView(sigma={self.sigma})"


class RABClassifier(BaseSmoothingEnsemble):
    """Training-set randomized smoothing certified against l2 feature poisoning (RAB).

    Weber et al. (2023) train ``n_estimators`` models, model ``k`` on its own noisy copy of
    the whole training set ``T + d_k`` (``d_k`` i.i.d. Gaussian, standard deviation
    ``sigma``), and let them vote. If the vote certifies class ``c`` with bounds ``p_A`` (on
    ``c``) and ``p_B`` (on every other class), then any perturbation of the training
    features ``Delta = (delta_1, ..., delta_n)`` (and of the test input ``delta_x`` when
    ``test_noise=True``) with

    ``sqrt(sum_i ||delta_i||^2 + ||delta_x||^2) < sigma / 2 (Phi^-1(p_A) - Phi^-1(p_B))``

    leaves the smoothed prediction at ``c``: a backdoor trigger or clean-label poison that
    small cannot change it. Labels are not covered (use ``DPAClassifier`` for label
    flips and inserted or deleted rows).

    The bounds hold with probability at least ``1 - alpha`` over the members' noise. Each
    member sees one fixed noisy copy in every epoch (noise keyed by ``(seed_, k, row)``),
    which is the smoothing distribution the theorem covers.

    Parameters
    ----------
    estimator : estimator object
        Base classifier (a skorch net or any sklearn classifier); one clone per member.
        Data-dependent preprocessing (a scaler fit on the training data) must go inside it or
        be fit on trusted data: the noise, and the radius, are in the units of the features
        this classifier receives.
    n_estimators : int, default=100
        Number of members ``N`` (at least 2). More members give tighter bounds (larger radii,
        fewer abstentions) at proportional cost.
    sigma : float, default=0.5
        Standard deviation of the training noise (and of the test noise), in feature units
        (pixel units in [0, 1] for images). Larger ``sigma`` certifies larger radii and costs
        clean accuracy.
    alpha : float, default=0.001
        The certificate fails with probability at most ``alpha``.
    bound : {"clopper-pearson", "simultaneous", "hoeffding"}, default="clopper-pearson"
        ``"clopper-pearson"``: Cohen et al.'s CERTIFY on the votes (``n_select`` members
        choose the class, the others bound it; :func:`~sklearn_certify.bounds.cohen_certify`).
        ``"simultaneous"``: all members choose and bound, with Clopper-Pearson bounds that
        hold for every class at once (:func:`~sklearn_certify.bounds.simultaneous_certify`).
        ``"hoeffding"``: averaged member probabilities with Hoeffding bounds, RAB's own
        statistic made sound (:func:`~sklearn_certify.bounds.hoeffding_certify`); needs
        members with probabilities.
    n_select : int, default=None
        Members that choose the class for ``"clopper-pearson"`` and ``"hoeffding"`` (the
        first ``n_select`` ids); ``None`` is ``ceil(n_estimators / 10)``. Unused by
        ``"simultaneous"``.
    test_noise : bool, default=True
        Add member ``k``'s fixed noise vector ``u_k`` (``test_noise_[k]``) to every test
        input it scores, as the paper does to reduce the train/test mismatch. The radius then
        covers the test input's perturbation too. ``False`` scores the inputs as given.
    engine : {"auto", "loop", "vectorized"}, default="auto"
        Training engine (:func:`~sklearn_certify.ensemble.fit_members`); skorch nets train all
        members at once.
    random_state : int, RandomState instance or None, default=None
        Seeds every member's noise, initialisation and batch order.
    n_jobs : int, default=None
        Parallel jobs (joblib semantics).
    verbose : int, default=0
        Progress bar over members when > 0.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels seen in ``fit``.
    estimators_ : list of length n_estimators
        The fitted members (built on first access for the vectorized engine).
    trained_members_ : sequence
        The members as the engine returned them.
    member_status_ : ndarray of str
        ``"trained"`` (or ``"constant"`` when every training label is one class).
    test_noise_ : ndarray of shape (n_estimators, ...) or None
        The test noise vectors ``u_k`` that scoring adds (``None`` when fitted with
        ``test_noise=False``).
    sigma_, alpha_, bound_ : float, float, str
        ``sigma``, ``alpha`` and ``bound`` as ``fit`` saw them; the certificate uses these,
        never a value set since.
    n_select_ : int
        Members that select the class (0 for ``"simultaneous"``).
    row_shape_ : tuple of int
        Shape of each row seen in ``fit`` (``X.shape[1:]``); scored rows must match it.
    seed_ : int
        Seed drawn from ``random_state``.
    n_features_in_ : int
        Number of features seen in ``fit``.

    See Also
    --------
    sklearn_certify.bounds.l2_radius_per_sample : Radius per poisoned row.
    sklearn_certify.bounds.linf_to_l2 : l_inf budgets in l2.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn_certify import RABClassifier
    >>> from sklearn_certify.datasets import load_digits
    >>> X, y = load_digits(digits=(1, 7), split="train")
    >>> X_test, y_test = load_digits(digits=(1, 7), split="test")
    >>> clf = RABClassifier(LogisticRegression(), n_estimators=20, sigma=0.25,
    ...                     random_state=0).fit(X, y)
    >>> cert = clf.certify(X_test)
    >>> cert.unit, bool((cert.radius >= 0).all()), float(clf.score(X_test, y_test)) > 0.9
    ('l2', True, True)
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseSmoothingEnsemble._parameter_constraints,
        "test_noise": ["boolean"],
    }

    def __init__(
        self,
        estimator,
        n_estimators: int = 100,
        sigma: float = 0.5,
        alpha: float = 0.001,
        bound: str = "clopper-pearson",
        n_select: int | None = None,
        test_noise: bool = True,
        engine: str = "auto",
        random_state=None,
        n_jobs: int | None = None,
        verbose: int = 0,
    ):
        super().__init__(
            estimator,
            n_estimators=n_estimators,
            sigma=sigma,
            alpha=alpha,
            bound=bound,
            n_select=n_select,
            engine=engine,
            random_state=random_state,
            n_jobs=n_jobs,
            verbose=verbose,
        )
        self.test_noise = test_noise

    def _test_view(self):
        return None if self.test_noise_ is None else TestNoiseView(self.sigma_)

    def _after_fit(self, X) -> None:
        """Store ``u_k`` for every member (what :class:`TestNoiseView` adds), or ``None``."""
        import torch

        self.test_noise_ = None
        if not self.test_noise:
            return
        seeds = [member_seed(self.seed_, k, "test_view") for k in range(self.n_estimators)]
        noise = TestNoiseView(self.sigma_)(
            torch.zeros((self.n_estimators, 1, *X.shape[1:]), dtype=torch.float64),
            None,
            torch.arange(self.n_estimators),
            torch.tensor(seeds, dtype=torch.int64),
        )
        self.test_noise_ = noise[:, 0].numpy().astype(X.dtype)
