import pytest
import torch

from medlib.samplers import imbalance_subset, label_subset, symmetric_noise
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
                                  lambda: label_subset(LABELS, 0.5, per_class=3),
                                  lambda: symmetric_noise(LABELS, -0.1, 2), lambda: symmetric_noise(LABELS, 0.5, 2)])
def test_bad_scenarios_are_refused(call):
    with pytest.raises(ParameterError):
        call()


@pytest.mark.parametrize("rate, n_classes", [(0.0, 2), (0.1, 2), (0.4, 2), (0.3, 5), (0.79, 5)])
def test_symmetric_noise_flips_exactly_its_share_to_another_class_seeded(rate, n_classes):
    labels = torch.arange(546) % n_classes
    noisy = symmetric_noise(labels, rate, n_classes, seed=3)
    flipped = noisy != labels
    assert int(flipped.sum()) == round(rate * len(labels))  # every chosen label moves to another class
    assert noisy.min() >= 0 and noisy.max() < n_classes and labels.equal(torch.arange(546) % n_classes)
    assert torch.equal(noisy, symmetric_noise(labels, rate, n_classes, seed=3))
    if rate and n_classes > 2:  # the new class is uniform over the others: every other class is reached
        assert len(set((noisy[flipped] - labels[flipped]).remainder(n_classes).tolist())) == n_classes - 1


def test_noise_at_which_labels_say_nothing_is_refused_in_one_line():
    with pytest.raises(ParameterError, match=r"label_noise=0\.5 is not allowed; expected a number with "
                                             r"0 <= label_noise < 0\.5 \(\(k - 1\) / k for k = 2 classes"):
        symmetric_noise(LABELS, 0.5, 2)
