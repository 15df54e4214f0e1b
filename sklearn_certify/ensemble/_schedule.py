"""Batch schedules of stacked members: each member's row order and step count, fixed shapes."""

from __future__ import annotations

import math

import numpy as np

from sklearn_certify.ensemble._net_config import NetConfig

_MIRROR_OK: bool | None = None


def _mirror_orders(n: int, epochs: int, gen) -> list:
    # What DataLoader(shuffle=True, generator=gen) draws per epoch: one int64 base seed for the
    # iterator, then RandomSampler's randperm (used) and a trailing randperm(n)[:0] (discarded).
    import torch

    orders = []
    for _ in range(epochs):
        torch.empty((), dtype=torch.int64).random_(generator=gen)
        orders.append(torch.randperm(n, generator=gen).numpy())
        torch.randperm(n, generator=gen)
    return orders


def _loader_orders(n: int, epochs: int, gen) -> list:
    import torch

    loader = torch.utils.data.DataLoader(torch.arange(n), batch_size=n, shuffle=True, generator=gen)
    return [np.concatenate([b.numpy() for b in loader]) for _ in range(epochs)]


def _mirror_matches_dataloader() -> bool:
    """Check once per process that the fast mirror draws exactly what DataLoader draws."""
    global _MIRROR_OK
    if _MIRROR_OK is None:
        import torch

        ok = True
        for n, seed in ((1, 0), (7, 1), (50, 2)):
            a = _mirror_orders(n, 3, torch.Generator().manual_seed(seed))
            b = _loader_orders(n, 3, torch.Generator().manual_seed(seed))
            ok = ok and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
        _MIRROR_OK = ok
    return _MIRROR_OK


def epoch_orders(n: int, epochs: int, seed: int, shuffle: bool):
    """Row order of each epoch, drawn exactly as skorch's DataLoader draws it."""
    import torch

    if not shuffle:
        return [np.arange(n)] * epochs
    gen = torch.Generator().manual_seed(seed)
    if _mirror_matches_dataloader():
        return _mirror_orders(n, epochs, gen)
    return _loader_orders(n, epochs, gen)  # pragma: no cover - a torch with other draws


def batch_schedule(positions, seeds, config: NetConfig, slots, chunk_size: int):
    """Batches of every slot of a chunk, as positions into the chunk's row store.

    ``positions[i]`` are member ``i``'s rows (positions in the store, in the member's order),
    drawn in the order its DataLoader would draw them from ``seeds[i]``. Returns the index
    tensor ``(T, chunk_size, W)``, the real-row counts ``(T, chunk_size)`` and ``T``; a short
    batch is padded with the first row of that batch (masked out of the loss), and the steps
    after a member's last one hold its first row (count 0: it takes no step), so a member's
    slot only ever holds its own rows.
    """
    bs = config.batch_size
    steps = [config.max_epochs * math.ceil(len(p) / bs) for p in positions]
    T = max(steps)
    idx = np.zeros((T, chunk_size, bs), dtype=np.int64)
    cnt = np.zeros((T, chunk_size), dtype=np.int64)
    for member_positions, seed, slot in zip(positions, seeds, slots, strict=True):
        n = len(member_positions)
        t = 0
        for order in epoch_orders(n, config.max_epochs, seed, config.shuffle):
            for lo in range(0, n, bs):
                rows = member_positions[order[lo : lo + bs]]
                k = rows.size
                idx[t, slot, :k] = rows
                idx[t, slot, k:] = rows[0]  # padding: the member's own row, masked
                cnt[t, slot] = k
                t += 1
        idx[t:, slot, :] = member_positions[0]  # steps after its last: its own row, inert
    return idx, cnt, T
