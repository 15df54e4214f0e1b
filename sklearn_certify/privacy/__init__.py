"""The third lens: differentially private members certified by group privacy.

:class:`DPVoteClassifier` trains members with DP-SGD, accounts for their privacy with
Opacus (:func:`dp_sgd_epsilon`), and certifies the vote against inserted and deleted rows
through group privacy (:func:`sklearn_certify.bounds.dp_group_radius`).
"""

from sklearn_certify.privacy._accounting import ACCOUNTANTS, dp_sgd_epsilon, member_privacy
from sklearn_certify.privacy._estimator import DPVoteClassifier
from sklearn_certify.privacy._opacus_net import OpacusNeuralNetClassifier

__all__ = [
    "ACCOUNTANTS",
    "DPVoteClassifier",
    "OpacusNeuralNetClassifier",
    "dp_sgd_epsilon",
    "member_privacy",
]
