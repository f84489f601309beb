"""Tests for course_utils.datasets.sampling: the balanced sampler and per-class subsets."""

import pytest
import torch

from course_utils.datasets import sampling


def test_balanced_sampler_weights_and_balance():
    targets = torch.tensor([0] * 400 + [1] * 40)
    sampler = sampling.balanced_sampler(targets, generator=torch.Generator().manual_seed(0))
    assert len(sampler) == 440
    assert torch.allclose(sampler.weights[:400], torch.full((400,), 1 / 400, dtype=torch.double))
    assert torch.allclose(sampler.weights[400:], torch.full((40,), 1 / 40, dtype=torch.double))
    many = sampling.balanced_sampler(targets, num_samples=20_000, generator=torch.Generator().manual_seed(0))
    drawn = targets[list(many)]
    assert abs(drawn.float().mean().item() - 0.5) < 0.02


@pytest.mark.parametrize("targets", [[], [0.0, 1.0], [[0, 1]], [-1, 0]])
def test_balanced_sampler_rejects_bad_targets(targets):
    with pytest.raises(ValueError, match="class indices"):
        sampling.balanced_sampler(torch.tensor(targets))


def test_class_subset_counts_and_seed():
    targets = torch.tensor([0, 1] * 50)
    chosen = sampling.class_subset(targets, (20, 5), seed=1)
    assert torch.bincount(targets[chosen]).tolist() == [20, 5]
    assert chosen == sorted(chosen) == sampling.class_subset(targets, (20, 5), seed=1)
    assert chosen != sampling.class_subset(targets, (20, 5), seed=2)
    assert torch.bincount(targets[sampling.class_subset(targets, 3)]).tolist() == [3, 3]
    with pytest.raises(ValueError, match="class 1 has 50 samples; cannot take 51"):
        sampling.class_subset(targets, (1, 51))
    with pytest.raises(ValueError, match="3 subset sizes for 2 classes"):
        sampling.class_subset(targets, (1, 1, 1))
