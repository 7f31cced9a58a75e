"""Scaling transform and two-hot supports."""

from __future__ import annotations

import pytest
import torch

from scalezero_agents.model import decode, h, h_inv, support, two_hot


def wide_range() -> torch.Tensor:
    grid = torch.cat((-torch.logspace(-6, 6, 400), torch.zeros(1), torch.logspace(-6, 6, 400)))
    return grid.double()


def test_h_inv_inverts_h_over_a_wide_range_including_negatives_and_zero() -> None:
    x = wide_range()
    torch.testing.assert_close(h_inv(h(x)), x, rtol=1e-9, atol=1e-9)
    assert h_inv(h(torch.zeros(1, dtype=torch.float64))).item() == 0.0
    y = torch.linspace(-300, 300, 1001, dtype=torch.float64)
    torch.testing.assert_close(h(h_inv(y)), y, rtol=1e-9, atol=1e-9)


def test_h_matches_its_definition() -> None:
    x = torch.tensor([-10.0, -1.0, 0.0, 3.0, 100.0], dtype=torch.float64)
    expected = torch.sign(x) * (torch.sqrt(x.abs() + 1) - 1) + 0.001 * x
    torch.testing.assert_close(h(x), expected)
    assert h(torch.tensor(3.0)).item() == pytest.approx(1.003)


@pytest.mark.parametrize("scale", [1, 5, 50, 300])
def test_two_hot_is_a_distribution_on_at_most_two_neighbouring_atoms(scale: int) -> None:
    x = torch.cat((wide_range(), torch.tensor([1e9, -1e9], dtype=torch.float64)))
    target = two_hot(x, scale)
    assert target.shape == (x.shape[0], 2 * scale + 1)
    torch.testing.assert_close(target.sum(-1), torch.ones(x.shape[0], dtype=torch.float64))
    assert (target >= 0).all()
    nonzero = target > 0
    assert (nonzero.sum(-1) <= 2).all()
    first = nonzero.float().argmax(-1)
    last = nonzero.shape[-1] - 1 - nonzero.flip(-1).float().argmax(-1)
    assert (last - first <= 1).all(), "the two atoms must be neighbours"
    expectation = target @ support(scale, dtype=torch.float64)
    torch.testing.assert_close(expectation, h(x).clamp(-scale, scale), rtol=1e-9, atol=1e-9)


def test_two_hot_clips_to_the_end_atoms_and_keeps_the_batch_shape() -> None:
    target = two_hot(torch.tensor([[1e6, -1e6], [0.0, 2.0]]), 3)
    assert target.shape == (2, 2, 7)
    assert target[0, 0, -1] == 1 and target[0, 1, 0] == 1 and target[1, 0, 3] == 1


@pytest.mark.parametrize("scale", [50, 300])
def test_decode_of_a_sharp_two_hot_logit_recovers_the_scalar(scale: int) -> None:
    x = torch.cat((torch.linspace(-2000, 2000, 801), torch.tensor([0.0, 0.37, -0.37]))).double()
    logits = torch.log(two_hot(x, scale) + 1e-30)
    torch.testing.assert_close(decode(logits, scale), x, rtol=1e-6, atol=1e-6)


def test_decode_rejects_a_wrong_number_of_logits() -> None:
    with pytest.raises(ValueError, match="101 logits"):
        decode(torch.zeros(3, 100), 50)
    with pytest.raises(ValueError, match="scale"):
        two_hot(torch.zeros(3), 0)
