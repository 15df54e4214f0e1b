"""Certified bounds on the poisoned training loss of linear models (Steinhardt et al. 2017).

Labels are -1/+1 throughout. ``upper_bound`` returns U*, a certified upper bound
on the *training* loss (clean plus poison points, per clean point) that the
defender's norm-constrained linear model reaches when an attacker adds
``round(epsilon * n)`` points that pass the *oracle* sphere/slab defence
(centroids from the clean data). It is not a bound on the test loss: it
approximates one only under the paper's assumptions (a convex loss, the oracle
defence, a defence that removes no or few clean points, and a training set
large enough that train and test loss are close). ``data_dependent_estimate``
is an *estimate*, not a certificate.
"""

from sklearn_certify.convex._curve import BoundCurve, bound_curve
from sklearn_certify.convex._data_dependent import DataDependentEstimate, data_dependent_estimate
from sklearn_certify.convex._defense import SphereSlabDefense
from sklearn_certify.convex._evaluate import (
    AttackEvaluation,
    constrained_linear_fit,
    evaluate_attack,
)
from sklearn_certify.convex._oracle import ClosedFormOracle, CvxpyOracle, max_linear_sphere_slab
from sklearn_certify.convex._upper_bound import (
    UpperBoundResult,
    n_poison_points,
    upper_bound,
    worst_case_point,
)

__all__ = [
    "AttackEvaluation",
    "BoundCurve",
    "ClosedFormOracle",
    "CvxpyOracle",
    "DataDependentEstimate",
    "SphereSlabDefense",
    "UpperBoundResult",
    "bound_curve",
    "constrained_linear_fit",
    "data_dependent_estimate",
    "evaluate_attack",
    "max_linear_sphere_slab",
    "n_poison_points",
    "upper_bound",
    "worst_case_point",
]
