"""Pure certificate math: votes, counts or scores in, (prediction, radius) out.

Everything here is numpy/scipy only, vectorized over samples, and validates
its arguments. Radii are relative to the returned prediction; they never look
at true labels.
"""

from sklearn_certify.bounds._bagging import bagging_kept_probability, bagging_radius
from sklearn_certify.bounds._conversions import l2_radius_per_sample, linf_to_l2
from sklearn_certify.bounds._dp import dp_group_radius
from sklearn_certify.bounds._dpa import dpa_radius, plurality_vote
from sklearn_certify.bounds._fa import (
    ABSTAIN,
    fa_bucket_learners,
    fa_learner_buckets,
    fa_radius,
    fa_shifts,
    fa_vote_counts,
)
from sklearn_certify.bounds._mixed import mixed_radius_frontier, mixed_rows_frontier
from sklearn_certify.bounds._runoff import fa_runoff_radius, runoff_predict, runoff_radius
from sklearn_certify.bounds._smoothing import (
    clopper_pearson_lower,
    clopper_pearson_upper,
    cohen_radius,
    hoeffding_bounds,
    rab_radius,
)
from sklearn_certify.bounds._smoothing_certify import (
    SmoothingBounds,
    cohen_certify,
    cohen_predict,
    gaussian_certify,
    hoeffding_certify,
    rab_eval_certify,
    simultaneous_certify,
)
from sklearn_certify.bounds._vote_bounds import (
    VoteBounds,
    cohen_vote_bounds,
    hoeffding_vote_bounds,
    simultaneous_vote_bounds,
)

__all__ = [
    "ABSTAIN",
    "SmoothingBounds",
    "VoteBounds",
    "bagging_kept_probability",
    "bagging_radius",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "cohen_certify",
    "cohen_predict",
    "cohen_radius",
    "cohen_vote_bounds",
    "dp_group_radius",
    "dpa_radius",
    "fa_bucket_learners",
    "fa_learner_buckets",
    "fa_radius",
    "fa_runoff_radius",
    "fa_shifts",
    "fa_vote_counts",
    "gaussian_certify",
    "hoeffding_bounds",
    "hoeffding_certify",
    "hoeffding_vote_bounds",
    "l2_radius_per_sample",
    "linf_to_l2",
    "mixed_radius_frontier",
    "mixed_rows_frontier",
    "plurality_vote",
    "rab_eval_certify",
    "rab_radius",
    "runoff_predict",
    "runoff_radius",
    "simultaneous_certify",
    "simultaneous_vote_bounds",
]
