"""Slow, literal re-statements of the certificates, used only as test oracles.

Each follows the published algorithm step by step (per sample, per class, with
sorting and a greedy loop), independent of the vectorized library code.
"""

from __future__ import annotations

import itertools

import numpy as np


def plurality(votes):
    return int(np.argsort(-np.asarray(votes), kind="stable")[0])


def counts_of(preds, n_classes):
    votes = np.zeros(n_classes, dtype=int)
    for p in preds:
        if p >= 0:
            votes[p] += 1
    return votes


def fa_certificate_loop(preds, n_classes, n_buckets, shifts):
    """The official FA greedy, one sample: learner predictions in learner-id order."""
    votes = counts_of(preds, n_classes)
    y = plurality(votes)
    cert = n_buckets
    for c in range(n_classes):
        if c == y:
            continue
        gap = votes[y] - votes[c] - (1 if c < y else 0)
        delta = []
        for b in range(n_buckets):
            power = 0
            for s in shifts:
                p = preds[(b + s) % n_buckets]
                power += 1 + (p == y) - (p == c)
            delta.append(power)
        delta.sort(reverse=True)
        total, r = 0, 0
        for value in delta:
            if total + value > gap:
                break
            total += value
            r += 1
        cert = min(cert, r)
    return y, cert


def runoff_prediction(scores, n_classes=None):
    """Run-off winner for one sample: a sequence of per-member score rows; ``None`` abstains."""
    voting = [np.asarray(s, dtype=float) for s in scores if s is not None]
    if n_classes is None:
        n_classes = len(voting[0])
    first = [int(np.argmax(s)) for s in voting]
    votes = counts_of(first, n_classes)
    order = np.argsort(-votes, kind="stable")
    m1, m2 = int(order[0]), int(order[1])
    e = 2 * sum(1 for s in voting if s[m1] > s[m2]) - len(voting)
    if e > 0:
        return m1
    if e < 0:
        return m2
    return min(m1, m2)


def smallest_attack(clean, predict, groups, options, max_size):
    """Fewest groups an attacker must rewrite to change ``predict``.

    ``clean`` is a list of per-member values, ``groups`` lists which members a
    single poison controls (a partition: one member; an FA bucket: d members),
    ``options`` the values a controlled member may take. Returns the smallest
    number of groups whose joint rewrite changes the prediction, or
    ``max_size + 1`` if none up to ``max_size`` does.
    """
    target = predict(clean)
    for size in range(1, max_size + 1):
        for chosen in itertools.combinations(range(len(groups)), size):
            members = sorted({m for g in chosen for m in groups[g]})
            for values in itertools.product(options, repeat=len(members)):
                attacked = list(clean)
                for m, v in zip(members, values, strict=False):
                    attacked[m] = v
                if predict(attacked) != target:
                    return size
    return max_size + 1
