import numpy as np
import pytest
from medmnist import Evaluator
from sklearn.metrics import balanced_accuracy_score

from medlib import data
from medlib.metrics import evaluate, majority_baseline, write_predictions


@pytest.mark.parametrize("flag", ["breastmnist", "retinamnist"])
def test_auc_and_acc_equal_medmnist_evaluator(real_data, flag, tmp_path):
    test = data.load(flag, "test")
    rng = np.random.default_rng(0)
    scores = rng.random((len(test), test.n_classes))
    scores /= scores.sum(1, keepdims=True)
    scores[np.arange(len(test)), test.labels.numpy()] += rng.random(len(test))  # better than chance
    ours = evaluate(test.labels.numpy(), scores, test.task)
    theirs = Evaluator(flag, "test", root=str(real_data)).evaluate(scores)
    assert ours["auc"] == theirs.AUC and ours["acc"] == theirs.ACC
    path = write_predictions(scores, tmp_path, flag, 28, "test", ours, "r0")
    assert path.name == f"{flag}_test_[AUC]{ours['auc']:.3f}_[ACC]{ours['acc']:.3f}@r0.csv"
    assert Evaluator.parse_and_evaluate.__func__  # the CSV is the format medmnist re-scores (below)
    df = np.loadtxt(path, delimiter=",")
    assert np.allclose(df[:, 1:], scores) and np.array_equal(df[:, 0], np.arange(len(test)))


def test_balanced_metrics_and_minority_recall():
    y = np.array([0, 0, 0, 1])
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    m = evaluate(y, scores, "binary-class")
    assert m["acc"] == 0.75 and m["minority_recall"] == 1.0
    assert m["balanced_acc"] == balanced_accuracy_score(y, [0, 0, 1, 1])


def test_majority_baseline_predicts_the_train_majority():
    m = majority_baseline(np.array([1, 1, 0]), np.array([0, 1, 1, 1]), "binary-class", 2)
    assert m["auc"] == 0.5 and m["acc"] == 0.75 and m["minority_recall"] == 0.0 and m["balanced_acc"] == 0.5
