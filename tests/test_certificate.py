import dataclasses

import numpy as np
import pytest

from sklearn_certify import Certificate


def make(**overrides):
    fields = dict(
        prediction=np.array(["a", "b", "a"]),
        radius=np.array([2, 0, 1]),
        abstain=np.array([False, True, False]),
        unit="samples",
    )
    fields.update(overrides)
    return Certificate(**fields)


def test_valid_certificate_is_frozen_and_sized():
    cert = make(votes=np.array([[3, 1], [2, 2], [3, 0]]))
    assert len(cert) == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        cert.radius = np.zeros(3)
    assert sorted(cert.to_dict()) == ["abstain", "prediction", "radius", "votes_0", "votes_1"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(radius=np.array([1, 2])), "radius has 2 entries"),
        (dict(radius=np.array([1, -1, 0])), "non-negative"),
        (dict(radius=np.array([1.0, np.nan, 0.0]), unit="l2"), "finite"),
        (dict(radius=np.array([1.0, 0.0, 0.5])), "integer"),
        (dict(radius=np.array([1, 1, 0])), "abstain is True"),
        (dict(abstain=np.array([0, 1, 0])), "boolean"),
        (dict(unit="meters"), "unit"),
        (dict(prediction=np.zeros((3, 1))), "one-dimensional"),
        (
            dict(p_lower=np.array([0.5, 1.5, 0.2]), radius=np.array([1.0, 0.0, 0.0]), unit="l2"),
            r"\[0, 1\]",
        ),
        (dict(votes=np.ones((2, 2))), "votes must have shape"),
        (dict(radius=np.array(["1", "0", "0"])), "numeric"),
    ],
)
def test_invalid_certificates_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        make(**overrides)


def test_l2_radius_may_be_fractional():
    cert = make(radius=np.array([0.25, 0.0, 1.5]), unit="l2", p_lower=[0.9, 0.4, 0.99])
    assert cert.p_lower.dtype == float
