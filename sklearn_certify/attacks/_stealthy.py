"""Stealthy poisoning of the certified radius of one class (Mehra et al., 2021).

The attacker moves every training row of one class by a small l_inf amount, keeping its label,
so that a classifier trained on the poisoned set with Gaussian augmentation and smoothed at
test time (:class:`~sklearn_certify.RandomizedSmoothingClassifier`) certifies smaller radii
on that class while clean accuracy barely moves. ``method="shift"`` is the closed form of the
paper's Theorem 1 for linear models; ``method="approxgrad"`` solves the bilevel problem with
approximate hypergradients (the paper's Algorithms 1 and 2).
"""

from __future__ import annotations

import copy
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import clone
from sklearn.utils._param_validation import Interval, StrOptions

from sklearn_certify.attacks._base import (
    PoisoningAttack,
    PoisonResult,
    assemble,
    label_index,
    one_torch_thread,
)
from sklearn_certify.attacks._feature_collision import project_rows

__all__ = ["StealthyRadiusAttack"]


class StealthyRadiusAttack(PoisoningAttack):
    """Clean-label poisoning that shrinks the test-time certified radius of one class.

    Mehra, Kailkhura, Chen & Hamm (2021) poison the training rows of a *target class*,
    each within ``budget`` in l_inf of its clean value and with its label unchanged, so
    that the randomized-smoothing classifier (Cohen et al.) trained on the poisoned set
    certifies smaller l2 radii on that class's test points, a loss of robustness that the
    clean accuracy does not reveal. The budget is the largest l_inf change of a row
    (``unit = "linf"``); every training row of ``target_class`` is poisoned.

    ``method="shift"`` is the closed form the paper derives for linear classifiers
    (Theorem 1): move the whole class by the budget, away from the other classes (each
    feature by ``budget`` times the sign of the difference of the class means). The
    decision boundary follows half-way, closer to the class's test points.

    ``method="approxgrad"`` solves the bilevel problem for a network (the lower level: a
    skorch net's module, or multinomial logistic regression, trained with Gaussian
    augmentation of standard deviation ``sigma`` on the poisoned set) and a soft-smoothed
    upper level: the average soft certified radius of the clean target-class rows (Zhai et
    al.'s MACER radius, ``n_noise`` noisy copies, logits times ``inverse_temperature``,
    zero where the soft smoothed classifier is wrong) plus ``accuracy_weight`` times their
    cross-entropy, which keeps the class accurate (the stealth). The two pull in opposite
    directions: the paper weighs the radius by ``lambda`` against the cross-entropy,
    ``accuracy_weight = 1 / lambda``, and its linear analysis drops the cross-entropy
    (``accuracy_weight=0``). Each of ``n_outer`` upper steps trains the lower level for
    ``n_inner`` more steps, solves ``H q = grad_v xi`` for the lower-level Hessian ``H``
    with ``n_cg`` conjugate-gradient steps on Hessian-vector products
    (:func:`torch.func.jvp` of :func:`torch.func.grad`), forms the hypergradient
    ``-d/du <grad_v zeta(u, v), q>`` (:func:`torch.func.vjp`) and takes a projected sign
    step. The lower level is re-initialised every ``reinit_every`` upper steps so that the
    poisons do not overfit one set of weights. Everything is full-batch, on the CPU and in
    one torch thread (the caller's setting is restored afterwards): meant for small data
    (digits, toy problems).

    Parameters
    ----------
    estimator : skorch NeuralNetClassifier or None, default=None
        The victim's network, unfitted (its module must return logits:
        ``criterion=torch.nn.CrossEntropyLoss``); ``None`` is multinomial logistic
        regression (one linear layer). ``approxgrad`` only.
    target_class : label, default=0
        The class whose certified radius is attacked; its training rows are poisoned.
    method : {"approxgrad", "shift"}, default="approxgrad"
        Bilevel optimisation, or Theorem 1's closed form.
    sigma : float, default=0.25
        Noise of the victim's Gaussian augmentation and smoothing (``approxgrad``).
    accuracy_weight : float, default=0.0
        Weight of the target rows' cross-entropy against their average soft radius in the
        upper-level objective (``1 / lambda`` in the paper's notation).
    n_outer : int, default=30
        Upper-level (projected) steps.
    n_inner : int, default=10
        Lower-level training steps per upper step (Adam, learning rate ``inner_lr``).
    n_warmup : int, default=200
        Lower-level training steps after each (re)initialisation.
    n_cg : int, default=10
        Conjugate-gradient steps on the Hessian system.
    damping : float, default=1e-3
        Added to the Hessian's diagonal, so that the system is positive definite.
    inner_lr : float, default=0.01
        Adam learning rate of the lower level.
    step_size : float, default=None
        l_inf length of an upper step; ``None`` is ``2.5 * budget / n_outer``.
    n_noise : int, default=16
        Noisy copies per row for the soft smoothed classifier (the paper's ``M``).
    inverse_temperature : float, default=16.0
        Logits are multiplied by it before the softmax of the soft smoothed classifier.
    reinit_every : int or None, default=10
        Re-initialise the lower level every this many upper steps (``None``: never).
    clip : tuple (low, high) or None, default=(0.0, 1.0)
        Range of every feature; ``None`` does not clip.
    random_state : int, RandomState instance or None, default=None
        Initialisations and noise of ``approxgrad``.

    Attributes
    ----------
    unit : str
        ``"linf"``: the budget is the largest l_inf change of a poisoned row.

    Examples
    --------
    The closed form on two Gaussian classes (Theorem 1):

    >>> import numpy as np
    >>> from sklearn_certify.attacks import StealthyRadiusAttack
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0.2, 0.3, (50, 2)), rng.normal(0.8, 0.3, (50, 2))])
    >>> y = np.repeat([0, 1], 50)
    >>> res = StealthyRadiusAttack(target_class=0, method="shift", clip=None).poison(X, y, 0.1)
    >>> res.changed.size, res.cost("linf"), (res.X[:50] - X[:50]).mean(axis=0).round(3)
    (50, 0.1, array([-0.1, -0.1]))

    The bilevel attack moves the class the same way:

    >>> attack = StealthyRadiusAttack(target_class=0, sigma=0.25, n_outer=5, n_warmup=50,
    ...                               clip=None, random_state=0)
    >>> res = attack.poison(X, y, 0.1)
    >>> bool(res.cost("linf") <= 0.1), bool((res.X[:50] - X[:50]).mean() < -0.05)
    (True, True)
    """

    _parameter_constraints: ClassVar[dict] = {
        "estimator": "no_validation",
        "target_class": "no_validation",
        "method": [StrOptions({"approxgrad", "shift"})],
        "sigma": [Interval(Real, 0, None, closed="neither")],
        "accuracy_weight": [Interval(Real, 0, None, closed="left")],
        "n_outer": [Interval(Integral, 1, None, closed="left")],
        "n_inner": [Interval(Integral, 0, None, closed="left")],
        "n_warmup": [Interval(Integral, 0, None, closed="left")],
        "n_cg": [Interval(Integral, 1, None, closed="left")],
        "damping": [Interval(Real, 0, None, closed="neither")],
        "inner_lr": [Interval(Real, 0, None, closed="neither")],
        "step_size": [Interval(Real, 0, None, closed="neither"), None],
        "n_noise": [Interval(Integral, 1, None, closed="left")],
        "inverse_temperature": [Interval(Real, 0, None, closed="neither")],
        "reinit_every": [Interval(Integral, 1, None, closed="left"), None],
        "clip": ["array-like", None],
        "random_state": ["random_state"],
    }
    unit = "linf"

    def __init__(
        self,
        estimator=None,
        *,
        target_class=0,
        method: str = "approxgrad",
        sigma: float = 0.25,
        accuracy_weight: float = 0.0,
        n_outer: int = 30,
        n_inner: int = 10,
        n_warmup: int = 200,
        n_cg: int = 10,
        damping: float = 1e-3,
        inner_lr: float = 0.01,
        step_size: float | None = None,
        n_noise: int = 16,
        inverse_temperature: float = 16.0,
        reinit_every: int | None = 10,
        clip=(0.0, 1.0),
        random_state=None,
    ):
        self.estimator = estimator
        self.target_class = target_class
        self.method = method
        self.sigma = sigma
        self.accuracy_weight = accuracy_weight
        self.n_outer = n_outer
        self.n_inner = n_inner
        self.n_warmup = n_warmup
        self.n_cg = n_cg
        self.damping = damping
        self.inner_lr = inner_lr
        self.step_size = step_size
        self.n_noise = n_noise
        self.inverse_temperature = inverse_temperature
        self.reinit_every = reinit_every
        self.clip = clip
        self.random_state = random_state

    @property
    def reads_model(self) -> bool:
        """False: the attack trains its own copy of the lower level."""
        return False

    def evaluation_rows(self, y_test) -> np.ndarray:
        """Indices of the test points of ``target_class``, whose radius is attacked.

        Parameters
        ----------
        y_test : array-like of shape (n_test,)

        Returns
        -------
        ndarray of int64
        """
        return np.flatnonzero(np.asarray(y_test) == self.target_class).astype(np.int64)

    def _check_options(self) -> tuple | None:
        if self.estimator is not None and self.method == "shift":
            raise ValueError(
                "estimator applies to method='approxgrad'; the closed form of method='shift' "
                "needs no model. Leave estimator as None."
            )
        if self.clip is None:
            return None
        clip = np.asarray(self.clip, dtype=float)
        if clip.shape != (2,) or not clip[0] < clip[1]:
            raise ValueError(
                f"clip must be None or (low, high) with low < high, got {self.clip!r}."
            )
        return float(clip[0]), float(clip[1])

    @property
    def changes(self) -> frozenset:
        """Features only (labels kept)."""
        return frozenset({"features"})

    def _validate_budget(self, X, y, budget, target) -> tuple | None:
        """The clip range, once the options and the classes are known to fit."""
        clip = self._check_options()
        classes = np.unique(y)
        label_index("target_class", self.target_class, classes)
        if classes.size < 2:
            raise ValueError("y has a single class; the attack needs another one to move from.")
        return clip

    def _poison(self, X, y, budget, *, model, target, rng) -> PoisonResult:
        clip = self._validate_budget(X, y, budget, target)
        rows = np.flatnonzero(y == self.target_class)
        base = X[rows]
        if budget == 0:
            moved = base
        elif self.method == "shift":
            away = base.astype(np.float64).mean(axis=0) - X[y != self.target_class].mean(axis=0)
            moved = base + budget * np.sign(away)
        else:
            with one_torch_thread():
                moved = _ApproxGrad(self, X, y, rows, budget, clip, rng).run()
        poisons = project_rows(moved, base, eps_linf=budget, clip=clip)
        X_new, y_new, source = assemble(X, y, rows=rows, X_rows=poisons)
        info = {"target_class": self.target_class, "method": self.method}
        return PoisonResult.from_poisoned(
            X, y, X_new, y_new, source, budget=budget, unit=self.unit, info=info
        )


class _ApproxGrad:
    """Algorithms 1 and 2 of Mehra et al. (2021), full batch, with torch.func."""

    def __init__(self, attack, X, y, rows, budget, clip, rng):
        import torch

        self.attack = attack
        self.budget = float(budget)
        self.clip = clip
        self.seed = int(rng.randint(np.iinfo(np.int32).max))
        self.generator = torch.Generator().manual_seed(self.seed)
        self.classes, y_encoded = np.unique(y, return_inverse=True)
        self.module = self._module(X.shape[1:])
        self.names = [name for name, _ in self.module.named_parameters()]
        self.shapes = [p.shape for _, p in self.module.named_parameters()]
        self.dtype = next(self.module.parameters()).dtype
        others = np.setdiff1d(np.arange(X.shape[0]), rows)
        self.X_clean = torch.as_tensor(np.ascontiguousarray(X[others]), dtype=self.dtype)
        self.base = torch.as_tensor(np.ascontiguousarray(X[rows]), dtype=self.dtype)
        labels = torch.as_tensor(y_encoded.astype(np.int64))
        self.y_all = torch.cat([labels[others], labels[rows]])
        self.y_val = labels[rows]

    # ------------------------------------------------------------------ the lower level
    def _module(self, row_shape):
        import torch

        from sklearn_certify.ensemble._skorch import torch_seeded

        estimator = self.attack.estimator
        if estimator is None:  # initialised by _fresh
            return torch.nn.Sequential(
                torch.nn.Flatten(), torch.nn.Linear(int(np.prod(row_shape)), self.classes.size)
            )
        net = clone(estimator)
        if not hasattr(net, "initialize") or not hasattr(net, "module"):
            raise TypeError(
                f"estimator must be a skorch net (or None), got {type(estimator).__name__}."
            )
        if net.criterion is not torch.nn.CrossEntropyLoss:
            raise TypeError(
                "estimator must train with criterion=torch.nn.CrossEntropyLoss (its module "
                f"returns logits); got {net.criterion!r}."
            )
        with torch_seeded(self.seed, [net]):
            net.initialize()
        return copy.deepcopy(net.module_).cpu()

    def _fresh(self):
        """Newly initialised lower-level weights, flat (every layer's ``reset_parameters``)."""
        import torch

        generator = self.generator
        for layer in self.module.modules():
            if hasattr(layer, "reset_parameters"):
                with torch.random.fork_rng():
                    torch.manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
                    layer.reset_parameters()
        return torch.cat([p.detach().reshape(-1) for p in self.module.parameters()])

    def _params(self, flat):
        out, start = {}, 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            size = int(np.prod(shape))
            out[name] = flat[start : start + size].reshape(shape)
            start += size
        return out

    def _logits(self, flat, inputs):
        from torch.func import functional_call

        return functional_call(self.module, self._params(flat), (inputs,))

    def _zeta(self, u, flat, noise):
        """Lower-level loss: cross-entropy on the noisy clean and poisoned rows."""
        import torch

        inputs = torch.cat([self.X_clean, u]) + noise
        return torch.nn.functional.cross_entropy(self._logits(flat, inputs), self.y_all)

    def _train(self, u, flat, steps: int):
        import torch

        flat = flat.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([flat], lr=self.attack.inner_lr)
        for _ in range(steps):
            optimizer.zero_grad()
            self._zeta(u, flat, self._noise(self.y_all.shape[0])).backward()
            optimizer.step()
        return flat.detach()

    def _noise(self, n: int, copies: int | None = None):
        import torch

        shape = (n, *self.base.shape[1:]) if copies is None else (copies, n, *self.base.shape[1:])
        sigma = self.attack.sigma
        return sigma * torch.randn(shape, generator=self.generator, dtype=self.dtype)

    # ------------------------------------------------------------------ the upper level
    def _xi(self, flat, noise):
        """Mean soft radius of the clean target rows plus their weighted cross-entropy."""
        import torch

        attack = self.attack
        logits = self._logits(flat, self.base)
        loss = torch.nn.functional.cross_entropy(logits, self.y_val)
        copies = (self.base[None] + noise).reshape(-1, *self.base.shape[1:])
        scores = self._logits(flat, copies) * attack.inverse_temperature
        soft = torch.softmax(scores, dim=1).reshape(noise.shape[0], self.base.shape[0], -1)
        soft = soft.mean(dim=0).clamp(1e-6, 1 - 1e-6)
        rows = torch.arange(soft.shape[0])
        top = soft[rows, self.y_val]
        runner_up = soft.clone()
        runner_up[rows, self.y_val] = 0.0
        runner_up = runner_up.max(dim=1).values
        radius = attack.sigma / 2 * (torch.special.ndtri(top) - torch.special.ndtri(runner_up))
        correct = (soft.argmax(dim=1) == self.y_val).to(radius.dtype).detach()
        return (radius * correct).mean() + attack.accuracy_weight * loss

    def _solve(self, u, flat, rhs, noise):
        """Conjugate gradient on ``(H + damping I) q = rhs``, H the lower-level Hessian."""
        from torch.func import grad, jvp

        grad_v = grad(self._zeta, argnums=1)

        def hvp(vector):
            return jvp(lambda v: grad_v(u, v, noise), (flat,), (vector,))[1] + (
                self.attack.damping * vector
            )

        q = rhs.new_zeros(rhs.shape)
        residual = rhs.clone()
        direction = residual.clone()
        norm = residual @ residual
        for _ in range(self.attack.n_cg):
            if norm <= 1e-20:
                break
            product = hvp(direction)
            step = norm / (direction @ product)
            q = q + step * direction
            residual = residual - step * product
            new_norm = residual @ residual
            direction = residual + (new_norm / norm) * direction
            norm = new_norm
        return q

    def _mixed(self, u, flat, noise, q):
        """``d/du <grad_v zeta(u, v), q>``: the mixed second derivative applied to ``q``."""
        from torch.func import grad, vjp

        grad_v = grad(self._zeta, argnums=1)
        _, pullback = vjp(lambda poisons: grad_v(poisons, flat, noise), u)
        return pullback(q)[0]

    def _project(self, u):
        import torch

        low, high = self.base - self.budget, self.base + self.budget
        if self.clip is not None:
            low, high = low.clamp(min=self.clip[0]), high.clamp(max=self.clip[1])
        return torch.maximum(torch.minimum(u, high), low)

    def run(self) -> np.ndarray:
        from torch.func import grad

        attack = self.attack
        step = attack.step_size or 2.5 * self.budget / attack.n_outer
        u = self.base.clone()
        flat = None
        for k in range(attack.n_outer):
            if flat is None or (attack.reinit_every and k % attack.reinit_every == 0):
                flat = self._train(u, self._fresh(), attack.n_warmup)
            flat = self._train(u, flat, attack.n_inner)
            noise = self._noise(self.y_all.shape[0])
            rhs = grad(self._xi)(flat, self._noise(self.base.shape[0], attack.n_noise))
            q = self._solve(u, flat, rhs.detach(), noise)
            hypergradient = -self._mixed(u, flat, noise, q)
            u = self._project(u - step * hypergradient.sign()).detach()
        return u.double().numpy()
