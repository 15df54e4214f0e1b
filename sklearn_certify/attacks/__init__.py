"""Poisoning attacks, and a harness that holds certificates to them.

A certificate claims that no poisoning of a given size changes a prediction; the attacks
here poison a training set within an exact budget, in the units certificates count, and
:func:`evaluate_under_attack` refits the certified classifier on the poisoned data and
checks that no certified prediction moved (for the smoothing classifiers, no more than
their level ``alpha`` allows).

* :class:`BackdoorAttack`: BadNets-style triggers (the RAB paper's one- and four-pixel
  patterns, Gaussian blending, any mask and pattern), dirty- or clean-label, and the
  matching test-time trigger.
* :class:`LabelFlipAttack`: random flips, or the rows nearest a test point, one per
  partition of a partition ensemble.
* :class:`PartitionInsertionAttack`: near-copies of a test point hashed into the
  partitions that decide its vote (the worst case of DPA for a 1-nearest-neighbour base).
* :class:`SphereSlabAttack`: the candidate attack of
  :func:`sklearn_certify.convex.upper_bound` as inserted rows.
* :class:`FeatureCollisionAttack`: clean-label poisons whose features collide with a test
  point, within exact per-row l_inf and l2 budgets.
* :class:`StealthyRadiusAttack`: clean-label poisoning of one class that shrinks its
  certified radius under test-time randomized smoothing.
* :class:`MixedAttack`: faint feature changes on many rows plus a few arbitrary rows, one
  budget ``(rows, l2)`` (the unit of :class:`~sklearn_certify.PartitionedRABClassifier`).
* :class:`ARTPoisoningAttack`: any poisoning attack of IBM's Adversarial Robustness
  Toolbox (an optional dependency), with an exact budget of rows.
"""

from sklearn_certify.attacks._art import ARTPoisoningAttack
from sklearn_certify.attacks._backdoor import TRIGGERS, BackdoorAttack
from sklearn_certify.attacks._base import COST_UNITS, PoisoningAttack, PoisonResult
from sklearn_certify.attacks._evaluate import (
    CertificateViolationError,
    CertificateViolationWarning,
    evaluate_under_attack,
)
from sklearn_certify.attacks._feature_collision import FeatureCollisionAttack, project_rows
from sklearn_certify.attacks._label_flip import LabelFlipAttack
from sklearn_certify.attacks._mixed import MixedAttack
from sklearn_certify.attacks._partition_insertion import PartitionInsertionAttack
from sklearn_certify.attacks._sphere_slab import SphereSlabAttack
from sklearn_certify.attacks._stealthy import StealthyRadiusAttack

__all__ = [
    "COST_UNITS",
    "TRIGGERS",
    "ARTPoisoningAttack",
    "BackdoorAttack",
    "CertificateViolationError",
    "CertificateViolationWarning",
    "FeatureCollisionAttack",
    "LabelFlipAttack",
    "MixedAttack",
    "PartitionInsertionAttack",
    "PoisonResult",
    "PoisoningAttack",
    "SphereSlabAttack",
    "StealthyRadiusAttack",
    "evaluate_under_attack",
    "project_rows",
]
