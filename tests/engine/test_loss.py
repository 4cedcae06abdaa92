"""kto_loss against an independent float64 computation of GUIDE §4 (TRL 1.16, loss_type="kto")."""
import math
import random

import pytest
import torch

from trainer.kto import kto_loss


def reference_formula(policy, reference, policy_kl, reference_kl, desirable, beta, w_d, w_u):
    """The formula written out with plain Python floats, one example at a time."""
    z0 = max(0.0, sum(p - r for p, r in zip(policy_kl, reference_kl)) / len(policy_kl))
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    losses, rewards = [], []
    for p, r, good in zip(policy, reference, desirable):
        ratio = p - r
        rewards.append(beta * ratio)
        losses.append(w_d * (1 - sigmoid(beta * (ratio - z0))) if good else w_u * (1 - sigmoid(beta * (z0 - ratio))))
    return sum(losses) / len(losses), z0, rewards


def random_batch(size, seed, *, desirable=None):
    rng = random.Random(seed)
    logps = lambda: [rng.uniform(-80, -5) for _ in range(size)]  # noqa: E731
    policy, reference, policy_kl, reference_kl = logps(), logps(), logps(), logps()
    labels = desirable if desirable is not None else [rng.random() < 0.5 for _ in range(size)]
    return policy, reference, policy_kl, reference_kl, labels


def as_tensors(policy, reference, policy_kl, reference_kl, labels):
    f64 = lambda values: torch.tensor(values, dtype=torch.float64)  # noqa: E731
    return f64(policy), f64(reference), f64(policy_kl), f64(reference_kl), torch.tensor(labels)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("beta,w_d,w_u", [(0.1, 1.0, 1.0), (0.5, 1.33, 1.0), (0.05, 1.0, 2.5)])
def test_matches_independent_float64_formula(seed, beta, w_d, w_u):
    batch = random_batch(7, seed)
    out = kto_loss(*as_tensors(*batch), beta=beta, desirable_weight=w_d, undesirable_weight=w_u)
    loss, z0, rewards = reference_formula(*batch, beta, w_d, w_u)
    assert out.loss.dtype == torch.float64
    assert out.loss.item() == pytest.approx(loss, abs=1e-12)
    assert out.kl.item() == pytest.approx(z0, abs=1e-12)
    assert out.rewards.tolist() == pytest.approx(rewards, abs=1e-12)


@pytest.mark.parametrize("label", [True, False])
def test_batches_with_one_label_only_are_finite_and_exact(label):
    batch = random_batch(5, seed=11, desirable=[label] * 5)
    out = kto_loss(*as_tensors(*batch))
    loss, z0, _ = reference_formula(*batch, 0.1, 1.0, 1.0)
    assert math.isfinite(out.loss.item())
    assert out.loss.item() == pytest.approx(loss, abs=1e-12)


def test_reference_point_is_clamped_at_zero_and_carries_no_gradient():
    policy_kl = torch.tensor([-3.0, -2.0], dtype=torch.float64, requires_grad=True)
    reference_kl = torch.tensor([-1.0, -1.0], dtype=torch.float64)
    out = kto_loss(torch.tensor([-1.0, -2.0], dtype=torch.float64, requires_grad=True),
                   torch.tensor([-1.5, -1.5], dtype=torch.float64), policy_kl, reference_kl, torch.tensor([True, False]))
    assert out.kl.item() == 0.0  # the mean log-ratio is negative: clamped
    assert not out.kl.requires_grad
    out.loss.backward()
    assert policy_kl.grad is None  # no gradient flows into the KL pairs


def test_gradient_matches_autograd_of_the_formula():
    policy = torch.tensor([-10.0, -12.0, -9.0], dtype=torch.float64, requires_grad=True)
    reference = torch.tensor([-11.0, -11.5, -9.5], dtype=torch.float64)
    desirable = torch.tensor([True, False, True])
    out = kto_loss(policy, reference, torch.tensor([-9.0, -8.0, -7.0], dtype=torch.float64),
                   torch.tensor([-9.5, -8.2, -7.1], dtype=torch.float64), desirable, beta=0.2)
    out.loss.backward()
    z0 = (0.5 + 0.2 + 0.1) / 3
    by_hand = []
    for p, r, good in zip([-10.0, -12.0, -9.0], [-11.0, -11.5, -9.5], [True, False, True]):
        s = 1 / (1 + math.exp(-0.2 * ((p - r) - z0) * (1 if good else -1)))
        by_hand.append((-s * (1 - s) * 0.2 * (1 if good else -1)) / 3)  # d/dp of (1 - σ(±β(r - z0))) / B
    assert policy.grad.tolist() == pytest.approx(by_hand, abs=1e-12)


def test_batch_of_one_is_refused_with_a_clear_message():
    one = torch.tensor([-1.0])
    with pytest.raises(ValueError, match="at least 2 examples"):
        kto_loss(one, one, one, one, torch.tensor([True]))


def test_mismatched_shapes_and_labels_are_refused():
    two = torch.tensor([-1.0, -2.0])
    with pytest.raises(ValueError, match="reference_logps must have shape"):
        kto_loss(two, torch.tensor([-1.0, -2.0, -3.0]), two, two, torch.tensor([True, False]))
    with pytest.raises(ValueError, match="bool"):
        kto_loss(two, two, two, two, torch.tensor([1, 0]))


def test_precomputed_reference_point_replaces_the_kl_pairs():
    batch = as_tensors(*random_batch(4, seed=5))
    own = kto_loss(*batch)
    given = kto_loss(batch[0], batch[1], None, None, batch[4], kl=own.kl)
    assert torch.equal(own.loss, given.loss)
