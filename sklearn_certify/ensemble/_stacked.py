"""Members trained by the vectorized engine, kept as stacked parameter tensors."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from sklearn_certify.ensemble._loop import check_view_output, make_member
from sklearn_certify.ensemble._seeding import member_seed
from sklearn_certify.ensemble._skorch import torch_seeded

__all__ = ["StackedMembers"]

#: Rows scored per vmapped forward call.
_ROW_BATCH = 4096


def check_input_dtype(X, param_dtype, owner: str) -> None:
    """Raise a clear ``TypeError`` when floating ``X`` is not in the parameters' dtype."""
    import torch

    dtype = np.asarray(X[:0]).dtype
    if np.issubdtype(dtype, np.floating) and torch.empty(0, dtype=param_dtype).numpy().dtype != (
        dtype
    ):
        raise TypeError(
            f"X has dtype {dtype} but {owner} parameters are {param_dtype} (the dtype they were "
            "trained on); pass X in that dtype, e.g. X.astype(np.float32)."
        )


def stacked_eval_forward(template, params, buffers, X, n_classes: int, device, view_args=None):
    """Eval-mode outputs of stacked members on shared rows, ``_ROW_BATCH`` rows at a time.

    ``params`` / ``buffers`` are stacked along axis 0 (``torch.func.stack_module_state``
    layout). ``view_args`` is ``None`` or ``(view, member_ids, seeds)``, tensors with one entry
    per stacked member: each member then scores ``view(rows, None, member_ids, seeds)[m]``
    instead of the shared rows. Yields ``(start_row, outputs)`` with ``outputs`` a tensor of
    shape ``(n_stacked, rows, n_classes)``; a module returning a tuple contributes its first
    element.
    """
    import torch
    from torch.func import functional_call, vmap

    def call(p, b, x):
        res = functional_call(template, (p, b), (x,))
        return res[0] if isinstance(res, (tuple, list)) else res

    shared = vmap(call, in_dims=(0, 0, None))
    per_member = vmap(call, in_dims=(0, 0, 0))
    Xt = torch.as_tensor(np.asarray(X))
    with torch.no_grad():
        for lo in range(0, Xt.shape[0], _ROW_BATCH):
            rows = Xt[lo : lo + _ROW_BATCH].to(device)
            if view_args is None:
                res = shared(params, buffers, rows)
            else:
                view, ids, seeds = view_args
                batch = rows.unsqueeze(0).expand(ids.shape[0], *rows.shape)
                viewed = view(batch, None, ids, seeds)
                check_view_output(viewed, batch)
                res = per_member(params, buffers, viewed)
            if res.ndim != 3 or res.shape[2] != n_classes:
                raise ValueError(
                    f"members produced outputs of shape {tuple(res.shape[1:])}; expected "
                    f"(n_samples, {n_classes}). Make the module's last layer output n_classes "
                    "values."
                )
            yield lo, res


def scoring_view_args(view, member_ids, seed: int, device):
    """``(view, member_ids, seeds)`` device tensors for scoring; ``member_ids`` ``-1`` -> seed 0."""
    import torch

    ids = np.asarray(member_ids, dtype=np.int64)
    seeds = np.array(
        [0 if mid < 0 else member_seed(seed, int(mid), "test_view") for mid in ids],
        dtype=np.int64,
    )
    return view, torch.as_tensor(ids).to(device), torch.as_tensor(seeds).to(device)


class StackedMembers(Sequence):
    """Fitted skorch members held as stacked parameters, one tensor per parameter and chunk.

    :func:`~sklearn_certify.ensemble.fit_members` returns this for the vectorized engine. It is a
    read-only sequence: ``members[i]`` is an ordinary fitted skorch net (configured exactly as
    the loop engine configures member ``i``, with the trained weights loaded), built on first
    access and cached; ``+`` with another sequence gives a plain list. Building a net costs
    about a millisecond, which for thousands of members is a noticeable part of training, so
    it is only paid for the members a caller looks at. Scoring never builds the nets:
    :meth:`outputs` runs every member at once with :func:`torch.func.vmap`, one chunk of
    ``chunk_size`` slots at a time, so a member's outputs are computed with tensor shapes that
    do not depend on which other members exist.

    Parameters
    ----------
    net : skorch.NeuralNet
        The unfitted base net the members were cloned from.
    chunks : list of dict of str to torch.Tensor
        Per chunk, the stacked trained parameters and buffers (BatchNorm's running
        statistics), shape ``(chunk_size, *tensor.shape)``.
    chunk_of, slot_of : ndarray of int of shape (n_members,)
        Where member ``i`` (in the order of the ``subsets`` given to ``fit_members``) lives.
    member_ids : ndarray of int of shape (n_members,)
        The members' ids (their seeds derive from ``(seed, member_id)``).
    n_classes : int
        Number of encoded classes.
    seed : int
        Base seed the members were trained with (the ensemble's ``seed_``).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skorch import NeuralNetClassifier
    >>> from sklearn_certify.ensemble import StackedMembers, fit_members, member_outputs
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3)).astype(np.float32); y = (X[:, 0] > 0).astype(np.int64)
    >>> net = NeuralNetClassifier(torch.nn.Linear, module__in_features=3, module__out_features=2,
    ...                           max_epochs=2, batch_size=8, criterion=torch.nn.CrossEntropyLoss)
    >>> members = fit_members(net, X, y, [np.arange(20), np.arange(20, 40)], n_classes=2,
    ...                       seed=0, engine="vectorized")
    >>> isinstance(members, StackedMembers), len(members), type(members[0]).__name__
    (True, 2, 'NeuralNetClassifier')
    >>> out = member_outputs(members, X[:5], n_classes=2)  # no net is built for this
    >>> np.allclose(out[:, 1], members[1].forward(X[:5]).numpy(), atol=1e-6)
    True
    """

    def __init__(self, net, chunks, chunk_of, slot_of, member_ids, *, n_classes, seed):
        self.net = net
        self.chunks = list(chunks)
        self.chunk_of = np.asarray(chunk_of, dtype=np.int64)
        self.slot_of = np.asarray(slot_of, dtype=np.int64)
        self.member_ids = np.asarray(member_ids, dtype=np.int64)
        self.n_classes = int(n_classes)
        self.seed = int(seed)
        self._nets: dict[int, object] = {}
        self._module = None

    # ------------------------------------------------------------------ sequence
    def __len__(self) -> int:
        return int(self.member_ids.shape[0])

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"StackedMembers indices must be ints or slices, got {index!r}.")
        n = len(self)
        i = int(index) + n if index < 0 else int(index)
        if not 0 <= i < n:
            raise IndexError(f"member index {index} out of range for {n} members.")
        if i not in self._nets:
            self._nets[i] = self._build_net(i)
        return self._nets[i]

    def __add__(self, other) -> list:
        return list(self) + list(other)

    def __radd__(self, other) -> list:
        return list(other) + list(self)

    def __repr__(self) -> str:
        return (
            f"StackedMembers({len(self)} x {type(self.net).__name__}, "
            f"{len(self.chunks)} chunks, device={self.device})"
        )

    @property
    def device(self):
        """The device holding the stacked parameters."""
        first = next(iter(self.chunks[0].values())) if self.chunks else None
        return first.device if first is not None else None

    def _build_net(self, i: int):
        import torch

        mid = int(self.member_ids[i])
        member = make_member(self.net, self.seed, mid, self.n_classes)
        with torch_seeded(member_seed(self.seed, mid, "torch_init"), [member]):
            member.initialize()
        chunk, slot = self.chunks[self.chunk_of[i]], int(self.slot_of[i])
        with torch.no_grad():
            for name, tensor in member.module_.state_dict(keep_vars=True).items():
                tensor.copy_(chunk[name][slot])
        return member

    # ------------------------------------------------------------------ scoring
    def outputs(self, X, view=None) -> np.ndarray:
        """Every member's forward output (eval mode) on ``X``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, ...)
            Rows to score, in the dtype the members were trained on.
        view : callable, default=None
            Test-time member view (see :func:`~sklearn_certify.ensemble.member_outputs`),
            given the members' ids and seeds ``member_seed(seed, id, "test_view")``.

        Returns
        -------
        outputs : ndarray of shape (n_samples, n_members, n_classes), float64
            Logits, or whatever the module returns (its first element if it returns a tuple).
        """
        import torch

        n = len(X)
        out = np.empty((n, len(self), self.n_classes), dtype=np.float64)
        if n == 0 or len(self) == 0:
            return out
        device = self.device
        check_input_dtype(X, next(iter(self.chunks[0].values())).dtype, "the members'")
        template = self._template().to(device).eval()
        buffer_names = {name for name, _ in template.named_buffers()}
        chunk_size = next(iter(self.chunks[0].values())).shape[0]
        for c, stacked in enumerate(self.chunks):
            params = {k: v for k, v in stacked.items() if k not in buffer_names}
            buffers = {k: v for k, v in stacked.items() if k in buffer_names}
            members = np.flatnonzero(self.chunk_of == c)
            if members.size == 0:
                continue
            slots = torch.as_tensor(self.slot_of[members], device=device)
            view_args = None
            if view is not None:
                ids = np.full(chunk_size, -1, dtype=np.int64)
                ids[self.slot_of[members]] = self.member_ids[members]
                view_args = scoring_view_args(view, ids, self.seed, device)
            results = stacked_eval_forward(
                template, params, buffers, X, self.n_classes, device, view_args
            )
            for lo, res in results:
                picked = res.index_select(0, slots).permute(1, 0, 2)
                out[lo : lo + picked.shape[0], members] = picked.cpu().numpy()
        return out

    def _template(self):
        """A module of the members' architecture (its own weights are never used)."""
        if self._module is None:
            net = self.net
            with torch_seeded(0):  # leaves the caller's torch generator untouched
                self._module = net.initialized_instance(net.module, net.get_params_for("module"))
        return self._module

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_nets"] = {}
        state["_module"] = None
        state["chunks"] = [{k: v.cpu() for k, v in chunk.items()} for chunk in self.chunks]
        state["_device"] = str(self.device) if self.chunks else "cpu"
        return state

    def __setstate__(self, state):
        import torch

        device = torch.device(state.pop("_device"))
        if device.type == "cuda" and not torch.cuda.is_available():
            warnings.warn(
                "These members were trained on CUDA but no CUDA device is available; their "
                "parameters stay on the CPU.",
                UserWarning,
                stacklevel=2,
            )
            device = torch.device("cpu")
        state["chunks"] = [{k: v.to(device) for k, v in c.items()} for c in state["chunks"]]
        self.__dict__.update(state)
