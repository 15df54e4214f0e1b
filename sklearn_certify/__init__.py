"""sklearn_certify: certificates against training-data poisoning for scikit-learn classifiers."""

from importlib.metadata import PackageNotFoundError, version

from sklearn_certify._audit import certify_to_file, data_digest
from sklearn_certify._certificate import Certificate
from sklearn_certify._pipeline import UnsoundPipelineWarning, certify
from sklearn_certify.partition import (
    CertifiedBaggingClassifier,
    DPAClassifier,
    PartitionedRABClassifier,
)
from sklearn_certify.privacy import DPVoteClassifier
from sklearn_certify.smoothing import (
    DenoisedSmoothingClassifier,
    RABClassifier,
    RandomizedSmoothingClassifier,
)

try:
    __version__ = version("sklearn_certify")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "Certificate",
    "CertifiedBaggingClassifier",
    "DPAClassifier",
    "DPVoteClassifier",
    "DenoisedSmoothingClassifier",
    "PartitionedRABClassifier",
    "RABClassifier",
    "RandomizedSmoothingClassifier",
    "UnsoundPipelineWarning",
    "__version__",
    "certify",
    "certify_to_file",
    "data_digest",
]
