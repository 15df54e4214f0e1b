"""Randomized smoothing of the training set: members on noisy copies, certified by vote.

:class:`RABClassifier` (Weber et al., 2023) certifies the smoothed prediction against any
perturbation of the training features (and the test input) of bounded total l2 norm. The
shared core (:class:`BaseSmoothingEnsemble`) and the keyed noise (:func:`keyed_normal`,
:class:`GaussianNoiseView`) are what the other smoothing classifiers build on.

:class:`RandomizedSmoothingClassifier` (Cohen et al., 2019) smooths the *test input* instead:
one base model trained with :class:`GaussianAugmentation`, certified against l2 perturbations
of the input it classifies.

:class:`DenoisedSmoothingClassifier` (Hong, Carlini & Kurakin, 2024) is RAB without test noise
whose members train on their noisy copy after a trusted denoiser has cleaned it.
"""

from sklearn_certify.smoothing._augment import GaussianAugmentation
from sklearn_certify.smoothing._cohen import RandomizedSmoothingClassifier
from sklearn_certify.smoothing._core import BOUNDS, BaseSmoothingEnsemble
from sklearn_certify.smoothing._denoised import (
    RAW_PRETRAIN,
    DenoisedNoiseView,
    DenoisedSmoothingClassifier,
    WarmStart,
)
from sklearn_certify.smoothing._noise import GaussianNoiseView, keyed_draws, keyed_normal
from sklearn_certify.smoothing._prefit import frozen_module
from sklearn_certify.smoothing._rab import RABClassifier, TestNoiseView

__all__ = [
    "BOUNDS",
    "RAW_PRETRAIN",
    "BaseSmoothingEnsemble",
    "DenoisedNoiseView",
    "DenoisedSmoothingClassifier",
    "GaussianAugmentation",
    "GaussianNoiseView",
    "RABClassifier",
    "RandomizedSmoothingClassifier",
    "TestNoiseView",
    "WarmStart",
    "frozen_module",
    "keyed_draws",
    "keyed_normal",
]
