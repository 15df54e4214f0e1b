"""Certified upper bounds for linear models under sphere/slab defences (Steinhardt et al. 2017).

Labels are -1/+1 throughout. ``upper_bound`` is a certificate under the oracle
defence (centroids from clean data) and the paper's assumptions;
``data_dependent_estimate`` is an *estimate*, not a certificate.
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
