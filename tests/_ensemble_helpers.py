"""Small torch modules and subset helpers shared by the ensemble-engine tests."""

import numpy as np
import torch

from sklearn_certify.datasets import load_digits


class TinyMLP(torch.nn.Module):
    """64 -> hidden -> n_out ReLU MLP; ``softmax=True`` outputs probabilities instead of logits."""

    def __init__(self, n_in=64, hidden=16, n_out=10, softmax=False):
        super().__init__()
        self.l1 = torch.nn.Linear(n_in, hidden)
        self.l2 = torch.nn.Linear(hidden, n_out)
        self.softmax = softmax

    def forward(self, x):
        out = self.l2(torch.relu(self.l1(x)))
        return torch.softmax(out, dim=-1) if self.softmax else out


def first_digits(n=600):
    """The first ``n`` bundled digits (flat float32 features, int labels)."""
    X, y = load_digits()
    return X[:n], y[:n]


def disjoint_subsets(n, sizes, seed=0):
    """Disjoint random index arrays of the given sizes, and the rows left over."""
    perm = np.random.default_rng(seed).permutation(n)
    out, start = [], 0
    for s in sizes:
        out.append(perm[start : start + s])
        start += s
    return out, perm[start:]


def keyed_noise(X, row_ids, member_ids, seeds, scale=0.3):
    """Noise that is a function of (member seed, row id) only: the rule a training view obeys."""
    key = seeds[:, None] * 1_000_003 + row_ids  # (M, W), distinct per (member, row)
    phase = (key % 9973).to(X.dtype)[..., None] + torch.arange(
        X.shape[-1], dtype=X.dtype, device=X.device
    )
    return X + scale * torch.sin(phase)
