"""A member's training step, written for one member and run by both engines.

The step is split as skorch splits ``train_step`` -> ``infer`` -> ``get_loss``: the engine
runs the member's forward pass, :meth:`TrainingStep.loss` turns its outputs into the loss, and
:meth:`TrainingStep.gradients` turns the loss into the gradients the optimizer applies. Every
method sees one member's tensors; the vectorized engine runs them for a whole chunk of members
with :func:`torch.func.vmap`, and :class:`~sklearn_certify.ensemble.CertifiedNeuralNetClassifier`
runs the same methods in the loop engine, so both engines train a member the same way.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["RowLoss", "TrainingStep", "row_loss_of"]


class RowLoss(NamedTuple):
    """The net's criterion, row by row: ``row_loss(outputs, y) -> (losses, weights)``.

    ``losses`` holds each row's loss (already multiplied by its class weight) and ``weights``
    each row's weight in skorch's mean (its class weight, 1 without class weights, 0 for rows
    whose label is the criterion's ``ignore_index``). Built by the engine from the net's
    ``criterion`` and ``criterion__*`` settings.
    """

    criterion: type
    class_weight: object  # torch.Tensor of shape (n_classes,) or None
    ignore_index: int
    label_smoothing: float
    log_probs: bool  # skorch's classifier feeds log(p + eps) to NLLLoss

    def __call__(self, outputs, y):
        import torch
        import torch.nn.functional as F

        if self.log_probs:
            outputs = torch.log(outputs + torch.finfo(outputs.dtype).eps)
        if self.criterion is torch.nn.CrossEntropyLoss:
            losses = F.cross_entropy(
                outputs,
                y,
                weight=self.class_weight,
                ignore_index=self.ignore_index,
                reduction="none",
                label_smoothing=self.label_smoothing,
            )
        else:
            losses = F.nll_loss(
                outputs,
                y,
                weight=self.class_weight,
                ignore_index=self.ignore_index,
                reduction="none",
            )
        counted = y != self.ignore_index
        if self.class_weight is None:
            weights = counted.to(losses.dtype)
        else:
            n_classes = self.class_weight.shape[0]
            weights = torch.where(counted, self.class_weight[y.clamp(0, n_classes - 1)], 0)
        return losses, weights


def row_loss_of(net) -> RowLoss:
    """The :class:`RowLoss` of a skorch net's ``criterion`` and ``criterion__*`` settings.

    Raises ``ValueError`` (naming the setting) for a criterion that is not the class
    ``CrossEntropyLoss`` or ``NLLLoss`` with a mean reduction: a member's step is written
    row by row, and only these two are known row by row.
    """
    import torch
    from skorch import NeuralNetClassifier

    crit = net.criterion
    kwargs = net.get_params_for("criterion")
    if isinstance(crit, torch.nn.Module):
        raise ValueError(
            f"criterion is the instance {crit!r}; a member's step written row by row needs "
            f"the class, e.g. criterion=torch.nn.{type(crit).__name__} (settings as "
            "criterion__<name>=...)"
        )
    if crit not in (torch.nn.CrossEntropyLoss, torch.nn.NLLLoss):
        raise ValueError(
            f"criterion {getattr(crit, '__name__', crit)!r} is not supported "
            "(CrossEntropyLoss and NLLLoss are)"
        )
    allowed = {"weight", "ignore_index", "reduction"}
    if crit is torch.nn.CrossEntropyLoss:
        allowed.add("label_smoothing")
    if set(kwargs) - allowed or kwargs.get("reduction", "mean") != "mean":
        raise ValueError(f"criterion settings {sorted(kwargs)} are not supported")
    if kwargs.get("label_smoothing", 0.0) and kwargs.get("weight") is not None:
        raise ValueError("label_smoothing together with class weights is not supported")
    weight = kwargs.get("weight")
    return RowLoss(
        crit,
        None if weight is None else torch.as_tensor(weight),
        int(kwargs.get("ignore_index", -100)),
        float(kwargs.get("label_smoothing", 0.0)),
        # skorch's classifier feeds log(p + eps) to NLLLoss
        crit is torch.nn.NLLLoss and isinstance(net, NeuralNetClassifier),
    )


class TrainingStep:
    """One member's training step: its loss, and the gradients the optimizer applies.

    Subclass it to change how a member learns, and give an instance to
    :class:`~sklearn_certify.ensemble.CertifiedNeuralNetClassifier` as ``training_step``;
    both engines then run it. Override :meth:`loss` to change the loss (the default is
    skorch's: the mean of the criterion over the batch's rows), or :meth:`gradients` to change
    the whole step (the default differentiates :meth:`loss`; the per-sample clipping of
    DP-SGD, :class:`~sklearn_certify.ensemble.DPSGDStep`, replaces it).

    Each method sees one member's tensors and must be written with :mod:`torch` operations
    that :func:`torch.func.vmap` can batch: no ``.item()``, no Python branching on tensor
    values, no data-dependent shapes, and random numbers only from the ``key`` and ``step``
    given (never from torch's global generator), so that a member's step is a function of its
    own batch, key and step number alone.

    Examples
    --------
    A loss that adds an L1 penalty on the outputs (written for one member; the engine batches
    it):

    >>> import torch
    >>> from sklearn_certify.ensemble import TrainingStep
    >>> class SparseOutputs(TrainingStep):
    ...     def loss(self, outputs, y, mask, row_loss):
    ...         penalty = (outputs.abs().sum(-1) * mask).sum() / mask.sum().clamp(min=1)
    ...         return super().loss(outputs, y, mask, row_loss) + 0.01 * penalty
    >>> def row_loss(outputs, y):  # the engine passes the net's criterion, row by row
    ...     losses = torch.nn.functional.cross_entropy(outputs, y, reduction="none")
    ...     return losses, torch.ones_like(losses)
    >>> outputs = torch.zeros(3, 2); y = torch.tensor([0, 1, 1])
    >>> mask = torch.tensor([True, True, False])  # the third row is padding
    >>> round(float(TrainingStep().loss(outputs, y, mask, row_loss)), 4)  # log 2
    0.6931
    >>> round(float(SparseOutputs().loss(outputs + 1, y, mask, row_loss)), 4)
    0.7131
    """

    def loss(self, outputs, y, mask, row_loss):
        """The member's loss on its batch (skorch's ``get_loss``).

        Parameters
        ----------
        outputs : torch.Tensor of shape (W, n_classes)
            The module's outputs on the batch, training mode.
        y : torch.Tensor of int64 of shape (W,)
            Labels.
        mask : torch.Tensor of bool of shape (W,)
            ``True`` for the batch's real rows; ``False`` rows are padding the vectorized
            engine adds to give every member the same batch shape, and must not count.
        row_loss : callable
            The net's criterion, row by row: ``row_loss(outputs, y)`` returns each row's loss
            (times its class weight) and each row's weight in skorch's mean (the class
            weight, 1 without class weights, 0 for a label equal to ``ignore_index``).

        Returns
        -------
        loss : torch.Tensor
            A scalar: by default the weighted mean of the real rows' losses, skorch's mean
            (0 when there are no real rows).
        """
        import torch

        losses, weights = row_loss(outputs, y)
        counted = mask & (weights != 0)
        den = torch.where(counted, weights, 0).sum()
        den = torch.where(mask.any(), den, torch.ones_like(den))
        return losses.masked_fill(~counted, 0).sum() / den

    def gradients(self, loss_of, params: dict, batch, key, step) -> tuple:
        """The gradients of one step and the loss they come from.

        Parameters
        ----------
        loss_of : callable
            ``loss_of(params, x, y, mask)``: runs the member's forward pass on ``x`` with
            ``params`` and returns :meth:`loss` (the engine builds it; it also updates the
            module's buffers, e.g. BatchNorm's running statistics, once per call).
        params : dict of str to torch.Tensor
            The member's parameters.
        batch : tuple
            ``(x, y, mask)``: rows ``(W, ...)``, labels ``(W,)``, real-row mask ``(W,)``.
        key : torch.Tensor of int64, scalar
            The member's key for the step's own randomness: ``member_seed(seed, member_id,
            "step")``. Draw with keyed functions of ``(key, step, ...)``, e.g.
            :func:`~sklearn_certify.smoothing.keyed_normal`.
        step : torch.Tensor of int64, scalar
            How many steps the member has taken before this one.

        Returns
        -------
        grads : dict of str to torch.Tensor
            One tensor shaped like ``params[name]`` per parameter.
        loss : torch.Tensor
            The scalar loss the step reports (skorch's ``train_loss``).
        """
        from torch.func import grad_and_value

        return grad_and_value(loss_of)(params, *batch)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    __hash__ = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
