import pytest
import torch

from medlib.samplers import imbalance_subset, label_subset
from medlib.validation import ParameterError

LABELS = torch.tensor([0] * 147 + [1] * 399)  # BreastMNIST's train split


def counts(index, labels=LABELS):
    return torch.bincount(labels[index], minlength=2).tolist()


@pytest.mark.parametrize("fraction, expected", [(1.0, [147, 399]), (0.1, [15, 40]), (0.001, [1, 1])])
def test_label_fraction_is_stratified_with_one_per_class_at_least(fraction, expected):
    assert counts(label_subset(LABELS, fraction, seed=0)) == expected


def test_per_class_and_seeds():
    assert counts(label_subset(LABELS, per_class=10)) == [10, 10]
    a, b = label_subset(LABELS, 0.1, seed=0), label_subset(LABELS, 0.1, seed=1)
    assert torch.equal(a, label_subset(LABELS, 0.1, seed=0)) and not torch.equal(a, b)


@pytest.mark.parametrize("ratio, minority, expected", [
    (1, None, [147, 147]), (10, None, [39, 399]), (50, None, [7, 399]), (10, 1, [147, 14])])
def test_imbalance_ratio(ratio, minority, expected):
    assert counts(imbalance_subset(LABELS, ratio, minority, seed=0)) == expected


@pytest.mark.parametrize("call", [lambda: label_subset(LABELS, 0.0), lambda: label_subset(LABELS, 1.5),
                                  lambda: imbalance_subset(LABELS, 0.5), lambda: imbalance_subset(LABELS, 2, 7),
                                  lambda: label_subset(LABELS, 0.5, per_class=3)])
def test_bad_scenarios_are_refused(call):
    with pytest.raises(ParameterError):
        call()
