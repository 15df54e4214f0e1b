"""Partition aggregation: content hashing and :class:`DPAClassifier` (DPA, FA, run-off, SS-DPA)."""

from sklearn_certify.partition._dpa import DPAClassifier
from sklearn_certify.partition._hashing import (
    HASHES,
    bucket_of_rows,
    canonical_rows,
    content_order,
    row_digests,
)
from sklearn_certify.partition._plan import PartitionPlan, plan_partitions

__all__ = [
    "HASHES",
    "DPAClassifier",
    "PartitionPlan",
    "bucket_of_rows",
    "canonical_rows",
    "content_order",
    "plan_partitions",
    "row_digests",
]
