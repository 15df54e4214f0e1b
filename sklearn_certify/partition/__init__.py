"""Partition aggregation: content hashing and :class:`DPAClassifier` (DPA, FA, run-off, SS-DPA).

:class:`CertifiedBaggingClassifier`: members on subsamples drawn with replacement.
"""

from sklearn_certify.partition._bagging import CertifiedBaggingClassifier
from sklearn_certify.partition._dpa import DPAClassifier
from sklearn_certify.partition._hashing import (
    HASHES,
    bucket_of_rows,
    canonical_rows,
    content_order,
    row_digests,
)
from sklearn_certify.partition._mixed import (
    PartitionedRABClassifier,
    PartitionFrontier,
    partition_of_keys,
)
from sklearn_certify.partition._plan import PartitionPlan, plan_partitions

__all__ = [
    "HASHES",
    "CertifiedBaggingClassifier",
    "DPAClassifier",
    "PartitionFrontier",
    "PartitionPlan",
    "PartitionedRABClassifier",
    "bucket_of_rows",
    "canonical_rows",
    "content_order",
    "partition_of_keys",
    "plan_partitions",
    "row_digests",
]
