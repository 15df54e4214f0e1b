"""Denoised smoothing of the training set (Hong, Carlini & Kurakin, 2024).

Member ``k`` trains on ``denoise(X + d_k)``: the noisy copy of training-set smoothing, denoised
once by a trusted denoiser. The denoiser is the only difference from
``RABClassifier(test_noise=False)``: the same keyed noise, members, votes and bounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods, StrOptions

from sklearn_certify.ensemble._skorch import is_skorch_net
from sklearn_certify.smoothing._core import BaseSmoothingEnsemble
from sklearn_certify.smoothing._noise import GaussianNoiseView

__all__ = ["RAW_PRETRAIN", "DenoisedNoiseView", "DenoisedSmoothingClassifier", "WarmStart"]

#: ``init`` value for the heuristic warm start on the raw (possibly poisoned) training set.
RAW_PRETRAIN = "heuristic-raw-pretrain"


class DenoisedNoiseView:
    """Member view: the keyed noisy copy ``X + d_k``, then the denoiser (apply once per member).

    Parameters
    ----------
    sigma : float
        Noise standard deviation, in the units of the features (the denoiser's [0, 1] scale).
    denoiser : object with ``denoise(X_noisy, sigma)``
        Trusted denoiser; it receives the noisy rows as one ``(n, ...)`` torch tensor.
    """

    def __init__(self, sigma: float, denoiser):
        self.sigma = float(sigma)
        self.denoiser = denoiser

    def __call__(self, X, row_ids, member_ids, seeds):
        noisy = GaussianNoiseView(self.sigma)(X, row_ids, member_ids, seeds)
        flat = noisy.reshape(-1, *X.shape[2:])
        return self._checked(self.denoiser.denoise(flat, self.sigma), flat).reshape(X.shape)

    def _checked(self, out, noisy):
        """The denoiser's output (a tensor or numpy array) as a tensor like ``noisy``, checked."""
        import torch

        if not (
            (isinstance(out, np.ndarray) and np.issubdtype(out.dtype, np.floating))
            or (isinstance(out, torch.Tensor) and out.is_floating_point())
        ):
            kind = f"dtype {out.dtype}" if hasattr(out, "dtype") else type(out).__name__
            raise TypeError(
                f"The denoiser {self.denoiser!r} returned {kind}; it must return a floating-"
                "point numpy array or torch tensor of its input's shape."
            )
        out = torch.as_tensor(out)
        if tuple(out.shape) != tuple(noisy.shape):
            raise ValueError(
                f"The denoiser {self.denoiser!r} returned shape {tuple(out.shape)} for noisy "
                f"rows of shape {tuple(noisy.shape)}; it must keep the input's shape."
            )
        if not bool(torch.isfinite(out).all()):
            raise ValueError(
                f"The denoiser {self.denoiser!r} returned NaN or infinite values for finite "
                f"noisy rows (sigma={self.sigma:g}); the training data X is finite, so fix the "
                "denoiser (its weights, or its arithmetic at this noise level)."
            )
        return out.to(device=noisy.device, dtype=noisy.dtype)

    def __repr__(self) -> str:
        return f"DenoisedNoiseView(sigma={self.sigma}, denoiser={self.denoiser!r})"


def _listed(items: list) -> str:
    """The first few ``items``, and how many there are in all when there are more."""
    shown = ", ".join(items[:5])
    return shown if len(items) <= 5 else f"{shown}, ... ({len(items)} in all)"


def check_init_state(estimator, state: Mapping) -> None:
    """Refuse ``init`` weights the base net's module cannot load, before any member trains.

    Parameters
    ----------
    estimator : skorch NeuralNet
        The base net; one module is built from it (under a fixed seed) and compared.
    state : mapping of str to torch.Tensor
        The weights ``init`` gives.

    Raises
    ------
    TypeError
        If a value of ``state`` is not a torch tensor.
    ValueError
        If ``state`` misses a key of the module's ``state_dict``, has another key, or a tensor
        of another shape; the message names them.
    """
    import torch

    from sklearn_certify.ensemble._skorch import torch_seeded

    not_tensors = [name for name, value in state.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise TypeError(
            "init must be a fitted net, a module or a module's state_dict (names mapped to "
            f"torch tensors); init[{not_tensors[0]!r}] is "
            f"{type(state[not_tensors[0]]).__name__}."
        )
    net = clone(estimator)
    with torch_seeded(0, [net]):
        net.initialize()
    expected = net.module_.state_dict()
    problems = []
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    shapes = [
        f"{name} {tuple(state[name].shape)} instead of {tuple(value.shape)}"
        for name, value in expected.items()
        if name in state and state[name].shape != value.shape
    ]
    for what, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if items:
            problems.append(f"{what}: {_listed(items)}")
    if problems:
        module = getattr(estimator.module, "__name__", repr(estimator.module))
        raise ValueError(
            f"init's weights do not fit the base net's module {module} "
            f"({'; '.join(problems)}). Pass the weights of a {module} built with the same "
            "module__* parameters, with one output per class in the order of classes_ (e.g. a "
            "net of the same architecture fitted on trusted data)."
        )


class WarmStart:
    """A skorch ``module`` that builds the base module and loads fixed starting weights.

    Every member built from it starts from the same ``state_dict`` instead of a random
    initialisation. The weights are a constant of the ensemble, so the members stay
    independent draws, as long as the model they come from never saw the training set being
    certified.

    Parameters
    ----------
    module : torch.nn.Module class
        The base net's module class.
    state_dict : mapping of str to torch.Tensor
        Weights to load into every member's module (copied to the CPU).
    """

    def __init__(self, module, state_dict: Mapping):
        self.module = module
        self.state_dict = {name: value.detach().cpu().clone() for name, value in state_dict.items()}

    def __call__(self, **kwargs):
        instance = self.module(**kwargs)
        instance.load_state_dict(self.state_dict)
        return instance

    def __repr__(self) -> str:
        return f"WarmStart({getattr(self.module, '__name__', self.module)!r})"


class DenoisedSmoothingClassifier(BaseSmoothingEnsemble):
    """Training-set smoothing with a denoiser, certified against clean-label poisoning.

    Hong, Carlini & Kurakin (2024): member ``k`` trains on the training set with Gaussian
    noise ``d_k`` added (keyed by ``(seed_, k, row)``, the same copy in every epoch) and then
    denoised once by a trusted denoiser (a one-shot diffusion model); the members vote.
    Denoising lets each member learn from nearly clean images while the smoothing noise keeps
    the certificate: the denoised copy is a fixed function of the noisy one, so the ensemble
    is still a smoothed classifier of the noisy training set. Any perturbation of the
    training features ``Delta`` with ``sqrt(sum_i ||delta_i||^2) < radius`` leaves the
    prediction unchanged, with probability at least ``1 - alpha`` (unit ``"l2"``; test
    inputs are not perturbed, as with ``RABClassifier(test_noise=False)``).

    Parameters
    ----------
    estimator : estimator object
        Base classifier (a skorch net or any sklearn classifier), one clone per member.
    denoiser : None, object with ``denoise(X_noisy, sigma)``, or callable
        Trusted denoiser (:func:`sklearn_certify.denoisers.as_denoiser`): e.g.
        ``load_bundled("digits")`` or a :class:`~sklearn_certify.denoisers.DDPMDenoiser`.
        ``None`` trains on the plain noisy copies. It must never have been trained on the
        data being certified: ``fit`` refuses a denoiser that records training rows shared
        with ``X`` (:func:`~sklearn_certify.denoisers.check_trusted_denoiser`). ``fit`` also
        refuses ``X`` outside the denoiser's ``data_range`` ([0, 1] for a
        :class:`~sklearn_certify.denoisers.DDPMDenoiser`; ``None`` and callables declare
        none). The denoiser may return a torch tensor or a numpy array; NaN output is refused.
    n_estimators : int, default=100
        Number of members.
    sigma : float, default=0.25
        Noise standard deviation on the [0, 1] feature scale the denoiser expects.
    alpha : float, default=0.001
        The certificate fails with probability at most ``alpha``.
    bound : {"clopper-pearson", "simultaneous", "hoeffding"}, default="clopper-pearson"
        How the votes become a certificate (as for :class:`~sklearn_certify.RABClassifier`).
    n_select : int, default=None
        Members that choose the class (``ceil(n_estimators / 10)`` by default).
    init : None, fitted skorch net, torch.nn.Module, state dict, or ``"heuristic-raw-pretrain"``
        Where every member's training starts (skorch nets only). ``None``: a random
        initialisation per member. Pretrained weights (a fitted net, a module or its
        ``state_dict``, of the base module with one output per class, in the order of
        ``classes_``): every member starts from them ("warm start"); sound only if that
        model **never saw the training set being certified** (e.g. trained on public or
        trusted data). ``fit`` compares them with the base module's ``state_dict`` before
        any training and names missing, unexpected or reshaped entries.
        ``"heuristic-raw-pretrain"``: one net is first trained on the raw
        training set and every member starts from it; that makes every member depend on
        the unsmoothed (possibly poisoned) data, so the certificate does not hold:
        :meth:`certify` raises and only :meth:`predict` is available.
    engine, random_state, n_jobs, verbose
        As for :class:`~sklearn_certify.RABClassifier`.

    Attributes
    ----------
    classes_, estimators_, trained_members_, member_status_, seed_, n_features_in_
        As for :class:`~sklearn_certify.RABClassifier`.
    sigma_, alpha_, bound_, n_select_, row_shape_
        As for :class:`~sklearn_certify.RABClassifier`: what the certificate uses.
    denoiser_ : object
        The denoiser the members' copies went through.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn_certify import DenoisedSmoothingClassifier
    >>> from sklearn_certify.datasets import load_digits_for_denoising
    >>> from sklearn_certify.denoisers import load_bundled
    >>> X, y = load_digits_for_denoising(split="train", digits=(1, 7))
    >>> X_test, y_test = load_digits_for_denoising(split="test", digits=(1, 7))
    >>> clf = DenoisedSmoothingClassifier(LogisticRegression(), load_bundled("digits"),
    ...                                   n_estimators=20, sigma=0.25, random_state=0)
    >>> cert = clf.fit(X, y).certify(X_test)
    >>> cert.unit, float(clf.score(X_test, y_test)) > 0.9
    ('l2', True)
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseSmoothingEnsemble._parameter_constraints,
        "denoiser": [HasMethods(["denoise"]), callable, None],
        "init": [
            StrOptions({RAW_PRETRAIN}),
            HasMethods(["state_dict"]),
            Mapping,
            HasMethods(["module_"]),
            None,
        ],
    }

    def __init__(
        self,
        estimator,
        denoiser=None,
        n_estimators: int = 100,
        sigma: float = 0.25,
        alpha: float = 0.001,
        bound: str = "clopper-pearson",
        n_select: int | None = None,
        init=None,
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
        self.denoiser = denoiser
        self.init = init

    def _check_options(self, X, y_encoded) -> None:
        from sklearn_certify.denoisers import as_denoiser, check_trusted_denoiser
        from sklearn_certify.denoisers._base import check_data_range

        super()._check_options(X, y_encoded)
        if self.init is not None and not is_skorch_net(self.estimator):
            raise TypeError(
                "init sets the starting weights of skorch net members; estimator is "
                f"{type(self.estimator).__name__}. Use init=None."
            )
        self.denoiser_ = as_denoiser(self.denoiser)
        check_data_range(self.denoiser_, X)
        check_trusted_denoiser(self.denoiser_, X)
        state = self._init_state()
        if state is not None:
            check_init_state(self.estimator, state)

    #: The denoiser runs once per member's copy, never again per epoch.
    _view_once = True

    def _member_view(self):
        return DenoisedNoiseView(self.sigma_, self.denoiser_)

    def _member_estimator(self, X, y_encoded):
        """The base net, set to start from ``init``'s weights (``None``: unchanged)."""
        if self.init is None:
            return self.estimator
        net = clone(self.estimator)
        state = self._init_state()
        if state is None:  # RAW_PRETRAIN: one net on the raw training set
            raw = clone(self.estimator).set_params(train_split=None, verbose=0)
            state = raw.fit(X, y_encoded).module_.state_dict()
        return net.set_params(module=WarmStart(self.estimator.module, state))

    def _init_state(self):
        """The weights ``init`` gives (``None`` for no ``init`` or raw pretraining)."""
        if self.init is None or isinstance(self.init, str):
            return None
        if hasattr(self.init, "module_"):
            return self.init.module_.state_dict()
        if hasattr(self.init, "state_dict"):
            return self.init.state_dict()
        return self.init

    def certify(self, X):
        """Predict and certify every row (see :class:`~sklearn_certify.RABClassifier`).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to certify.

        Returns
        -------
        certificate : Certificate
            Unit ``"l2"``: the total l2 norm of a training-set perturbation that provably
            leaves the prediction unchanged.

        Raises
        ------
        ValueError
            With ``init="heuristic-raw-pretrain"``, which voids the certificate.
        """
        if self.init == RAW_PRETRAIN:
            raise ValueError(
                "init='heuristic-raw-pretrain' started every member from a net trained on the "
                "raw training set, so every member depends on the unsmoothed (possibly "
                "poisoned) data and the smoothing certificate does not hold. predict() is "
                "available; to certify, use init=None or weights pretrained on data disjoint "
                "from the training set."
            )
        return super().certify(X)
