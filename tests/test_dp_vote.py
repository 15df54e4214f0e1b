"""DPVoteClassifier: DP-SGD members, Opacus's accounting, and the group-privacy certificate."""

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier

from sklearn_certify import bounds
from sklearn_certify.attacks import BackdoorAttack, evaluate_under_attack
from sklearn_certify.datasets import load_digits
from sklearn_certify.ensemble import CertifiedNeuralNetClassifier, DPSGDStep, member_seed
from sklearn_certify.ensemble._skorch import torch_seeded
from sklearn_certify.ensemble._threads import one_thread
from sklearn_certify.privacy import DPVoteClassifier, dp_sgd_epsilon


class SmallMLP(torch.nn.Module):
    def __init__(self, n_out=2):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, n_out)
        )

    def forward(self, x):
        return self.layers(x)


def _net(**kw):
    params = dict(criterion=torch.nn.CrossEntropyLoss, max_epochs=8, lr=1.0, module__n_out=2)
    params.update(kw)
    return NeuralNetClassifier(SmallMLP, **params)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(digits=(0, 1), split="train")
    X_test, y_test = load_digits(digits=(0, 1), split="test")
    return X, y, X_test[:40], y_test[:40]


@pytest.fixture(scope="module")
def fitted(digits):
    X, y, _, _ = digits
    clf = DPVoteClassifier(
        _net(),
        n_estimators=20,
        noise_multiplier=20.0,
        expected_batch_size=300,
        alpha=0.05,
        random_state=0,
    )
    return clf.fit(X, y)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_epsilon_is_opacus_accounting_of_the_members_training(fitted):
    from opacus.accountants import PRVAccountant, RDPAccountant

    rdp = RDPAccountant()
    rdp.history = [(20.0, 1.0, 8)]
    assert fitted.epsilon_ == pytest.approx(rdp.get_epsilon(delta=1e-5), rel=1e-12)
    assert fitted.steps_ == 8 and fitted.delta_ == 1e-5
    prv = PRVAccountant()
    prv.history = [(20.0, 1.0, 8)]
    assert dp_sgd_epsilon(20.0, 1.0, 8, 1e-5, accountant="prv") == pytest.approx(
        prv.get_epsilon(delta=1e-5), rel=1e-9
    )
    # more noise, fewer steps, subsampling: less epsilon
    assert dp_sgd_epsilon(40.0, 1.0, 8, 1e-5) < fitted.epsilon_
    assert dp_sgd_epsilon(20.0, 1.0, 4, 1e-5) < fitted.epsilon_
    assert dp_sgd_epsilon(20.0, 0.1, 8, 1e-5) < fitted.epsilon_


def test_certificate_is_group_privacy_on_the_vote_bounds(fitted, digits):
    _, _, X_test, y_test = digits
    cert = fitted.certify(X_test)
    assert cert.unit == "samples"
    expected = bounds.dp_group_radius(cert.p_lower, cert.p_upper, fitted.epsilon_, 1e-5)
    np.testing.assert_array_equal(cert.radius, np.where(cert.abstain, 0, expected))
    assert (cert.prediction == y_test).mean() > 0.9  # the noisy members still learn
    assert cert.radius.max() >= 1  # and certify a little (far less than DPA: see the guide)


def test_members_are_dp_sgd_nets_trained_alone(fitted, digits):
    """Member 3 is the DP-SGD net fitted by itself with its own keys (no subsampling)."""
    X, y, _, _ = digits
    member = fitted.estimators_[3]
    assert isinstance(member, CertifiedNeuralNetClassifier)
    step = member.training_step
    assert isinstance(step, DPSGDStep)
    assert (step.noise_multiplier, step.max_grad_norm, step.expected_batch_size) == (20.0, 1.0, 300)
    assert member.batch_size == len(X) and member.max_epochs == 8
    seed = fitted.seed_
    alone = CertifiedNeuralNetClassifier(
        SmallMLP,
        module__n_out=2,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=8,
        lr=1.0,
        batch_size=len(X),
        training_step=DPSGDStep(1.0, 20.0, 300),
        member_key=member_seed(seed, 3, "step"),
        classes=[0, 1],
        train_split=None,
        verbose=0,
    )
    with one_thread(), torch_seeded(member_seed(seed, 3, "torch_init")):
        alone.fit(X, np.searchsorted([0, 1], y))
    for a, b in zip(alone.module_.parameters(), member.module_.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4)  # engines: DP-SGD's tolerance


def test_inserted_rows_within_the_radius_change_no_certified_prediction(digits):
    X, y, X_test, y_test = digits
    clf = DPVoteClassifier(
        _net(max_epochs=6),
        n_estimators=12,
        noise_multiplier=20.0,
        expected_batch_size=300,
        alpha=0.05,
        random_state=1,
    )
    attack = BackdoorAttack("four_pixel", target_label=0, mode="insert", random_state=0)
    rows = evaluate_under_attack(
        clf,
        attack,
        X,
        y,
        X_test[:10],
        y_test[:10],
        budgets=[0, 1],
        on_violation="raise",
    )
    assert [r["budget"] for r in rows] == [0, 1]
    assert rows[1]["n_certified"] > 0


def test_refusals_before_training(digits):
    from sklearn.linear_model import LogisticRegression

    X, y, _, _ = digits
    with pytest.raises(TypeError, match="needs a skorch net"):
        DPVoteClassifier(LogisticRegression()).fit(X, y)
    stepped = CertifiedNeuralNetClassifier(
        SmallMLP, criterion=torch.nn.CrossEntropyLoss, training_step=DPSGDStep()
    )
    with pytest.raises(ValueError, match="sets the members' training step"):
        DPVoteClassifier(stepped).fit(X, y)
    with pytest.raises(ValueError, match="noise_multiplier"):
        DPVoteClassifier(_net(), noise_multiplier=0.0).fit(X, y)


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_dp_sgd_step_equals_opacus_update_with_the_same_noise(monkeypatch):
    """One DP-SGD step: our keyed step and Opacus's DPOptimizer, given the same noise."""
    import opacus.optimizers.optimizer as dp_optimizer
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer
    from torch.func import functional_call

    from sklearn_certify.ensemble import TrainingStep
    from sklearn_certify.ensemble._dp_step import _add_noise

    torch.manual_seed(0)
    module = SmallMLP(n_out=3)
    x, y = torch.randn(16, 64), torch.randint(0, 3, (16,))
    key, step = torch.tensor(123), torch.tensor(4)
    params = {k: v.detach().clone() for k, v in module.named_parameters()}
    zeros = {k: torch.zeros_like(v) for k, v in params.items()}
    noise = _add_noise(zeros, 0.7 * 1.5, key, step)  # exactly the step's noise

    def row_loss(outputs, labels):
        losses = torch.nn.functional.cross_entropy(outputs, labels, reduction="none")
        return losses, torch.ones_like(losses)

    def loss_of(p, xb, yb, mask):
        return TrainingStep().loss(functional_call(module, p, (xb,)), yb, mask, row_loss)

    ours, _ = DPSGDStep(1.5, 0.7, expected_batch_size=16).gradients(
        loss_of, params, (x, y, torch.ones(16, dtype=torch.bool)), key, step
    )
    names = [name for name, _ in module.named_parameters()]
    queue = [noise[name] for name in names]
    monkeypatch.setattr(dp_optimizer, "_generate_noise", lambda *a, **k: queue.pop(0))
    private = GradSampleModule(module)
    optimizer = DPOptimizer(
        torch.optim.SGD(private.parameters(), lr=1.0),
        noise_multiplier=0.7,
        max_grad_norm=1.5,
        expected_batch_size=16,
    )
    torch.nn.functional.cross_entropy(private(x), y).backward()
    optimizer.pre_step()
    for name, p in zip(names, private.parameters(), strict=True):
        torch.testing.assert_close(p.grad, ours[name], rtol=0, atol=1e-6)


def test_opacus_trains_the_loop_engines_members_as_the_vectorized_step_does(digits):
    """Without noise both are deterministic: Opacus's whole training equals DPSGDStep's."""
    from sklearn_certify.privacy import OpacusNeuralNetClassifier

    X, y, _, _ = digits
    common = dict(
        module__n_out=2,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=5,
        lr=1.0,
        batch_size=len(X),
        classes=[0, 1],
        train_split=None,
        verbose=0,
    )
    opacus_net = OpacusNeuralNetClassifier(
        SmallMLP, noise_multiplier=0.0, max_grad_norm=0.5, expected_batch_size=300, **common
    )
    ours = CertifiedNeuralNetClassifier(
        SmallMLP, training_step=DPSGDStep(0.5, 0.0, expected_batch_size=300), **common
    )
    for net in (opacus_net, ours):
        with one_thread(), torch_seeded(7):
            net.fit(X, y)
    for a, b in zip(opacus_net.module_.parameters(), ours.module_.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    # Opacus's hooks are gone after training: the fitted module is a plain module
    assert not any(m._forward_hooks or m._backward_hooks for m in opacus_net.module_.modules())


def test_loop_engine_members_are_opacus_trained(digits, fitted):
    from opacus.optimizers import DPOptimizer

    from sklearn_certify.privacy import OpacusNeuralNetClassifier

    X, y, X_test, _ = digits
    loop = DPVoteClassifier(**{**fitted.get_params(deep=False), "engine": "loop"}).fit(X, y)
    member = loop.estimators_[0]
    assert isinstance(member, OpacusNeuralNetClassifier)
    assert isinstance(member.optimizer_, DPOptimizer)
    assert loop.epsilon_ == fitted.epsilon_
    a, b = loop.certify(X_test), fitted.certify(X_test)
    assert (a.prediction == b.prediction).mean() >= 0.9  # other noise draws, the same learner


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_any_ensemble_reports_its_dp_members_privacy_or_says_why_not(digits, fitted):
    from sklearn_certify import DPAClassifier, RABClassifier
    from sklearn_certify.privacy import member_privacy

    X, y, _, _ = digits
    assert member_privacy(fitted, 1e-5) == (pytest.approx(fitted.epsilon_, rel=1e-12), 1e-5)
    step = DPSGDStep(1.0, 20.0, expected_batch_size=100)
    full = CertifiedNeuralNetClassifier(
        SmallMLP,
        module__n_out=2,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=4,
        lr=1.0,
        batch_size=len(X),
        training_step=step,
    )
    dpa = DPAClassifier(full, n_partitions=4, random_state=0).fit(X, y)
    assert member_privacy(dpa, 1e-5)[0] == pytest.approx(dp_sgd_epsilon(20.0, 1.0, 4, 1e-5))
    shuffled = RABClassifier(
        full.set_params(batch_size=32), n_estimators=3, sigma=0.5, alpha=0.5, random_state=0
    ).fit(X, y)
    with pytest.raises(ValueError, match="shuffled mini-batches are not a sampling"):
        member_privacy(shuffled, 1e-5)
    plain = RABClassifier(_net(max_epochs=1), n_estimators=3, alpha=0.5, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="not trained with DP-SGD"):
        member_privacy(plain, 1e-5)
