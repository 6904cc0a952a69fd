"""Each chapter's opening sentence (its *finding*, glued under the title) is generated from the chapter's results:
these hand-built tables check the numbers, the arms and the direction each generator states, and its sentence for
an empty result."""

import math

import pandas as pd

from medlib import corruptions, domain, explain, prose, speed


# ---------------------------------------------------------------------------------------- 1 data


def _datasets():
    datasets = pd.DataFrame([
        dict(dataset="breastmnist", task="binary-class", classes=2, channels=1, train=546, val=78, test=156),
        dict(dataset="retinamnist", task="ordinal-regression", classes=3, channels=3, train=200, val=20, test=40),
    ]).set_index("dataset")
    counts = {"breastmnist": pd.DataFrame({"train": [147, 399], "val": [21, 57], "test": [42, 114]},
                                          index=["0: malignant", "1: normal, benign"]),
              "retinamnist": pd.DataFrame({"train": [100, 20, 80], "val": [10, 1, 9], "test": [20, 5, 15]},
                                          index=["0: a", "1: b", "2: c"])}
    return datasets, counts


def test_the_data_finding_states_each_targets_splits_and_its_smallest_train_class():
    datasets, counts = _datasets()
    pools = pd.DataFrame([{"target": "breastmnist", "source pool": "pneumoniamnist + retinamnist", "images": 5788,
                           "classes (union)": 7, "dropped by leakage guard": "", "images for pre-training": 256}]
                         ).set_index("target")
    text = prose.data_finding(datasets, counts, pools)
    assert ("The target breastmnist (binary-class, 2 classes) has 546 train, 78 validation and 156 test images; its "
            "smallest class, malignant, holds 147 of the train images (27%, against 50% for even classes).") in text
    assert "its smallest class, b, holds 20 of the train images (10%, against 33% for even classes)" in text
    assert "Pre-training uses 256 of the 5,788 images of breastmnist's source pool (pneumoniamnist + retinamnist)." \
        in text
    assert prose.data_finding(datasets.iloc[:0], {}) == "No target datasets in this chapter's parameters."


# -------------------------------------------------------------------------------------- 2 pre-training


def _history(*epochs):
    return {"history": [dict(epoch=i + 1, loss=loss, knn_acc=knn) for i, (loss, knn) in enumerate(epochs)]}


def test_the_pretraining_finding_names_the_best_knn_at_the_last_epoch_and_each_loss_trend():
    results = {"breastmnist": {  # TL leads at the first epoch, SSL SimCLR at the last
        "ssl-byol": _history((-0.5, 0.40), (-0.9, 0.50)),
        "ssl-simclr": _history((5.0, 0.30), (5.5, 0.80)),
        "tl": _history((3.0, 0.90), (2.0, 0.70)),
        "fusion": {"history": []}}}  # trains nothing of its own: no kNN, no trend
    text = prose.pretraining_finding(results)
    assert ("On the source pool of breastmnist, after 2 epochs, SSL SimCLR has the highest kNN accuracy on held-out "
            "source images, 0.800, and SSL BYOL the lowest, 0.500;") in text
    assert "which favours TL by construction" in text
    assert "From the first to the last epoch the loss fell for TL (supervised) and SSL BYOL and rose for SSL SimCLR." \
        in text
    one = prose.pretraining_finding({"breastmnist": {"tl": _history((3.0, 0.9)), "ssl-byol": _history((1.0, 0.2))}})
    assert "after 1 epoch, TL (supervised) has the highest" in one and "SSL BYOL the lowest, 0.200;" in one
    assert "With one epoch the losses show no trend yet." in one
    assert prose.pretraining_finding({}).startswith("No stored pre-trainings")


# ------------------------------------------------------------------------------------------ 6 domain


def _gains(linear, finetune, std=0.02):
    """``{(pool, arm): gain}`` per protocol, as :func:`domain.gains` merged with the distances (far pool first)."""
    rows = []
    for protocol, gains in (("linear", linear), ("finetune", finetune)):
        for (pool, arm), gain in gains.items():
            distance = {"far": 3.0, "near": 1.0}[pool]
            rows.append(dict(target="breastmnist", pool=pool, arm=arm, protocol=protocol, auc_mean=0.7 + gain,
                             scratch=0.7, gain=gain, gain_std=std, seeds=3, frechet=distance, mmd2=distance / 10))
    return pd.DataFrame(rows)


def test_the_domain_finding_names_the_nearest_pool_the_largest_gain_and_says_when_none_beats_scratch():
    merged = _gains(linear={("far", "tl"): 0.01, ("far", "ssl-simclr"): 0.08, ("near", "tl"): 0.05,
                            ("near", "ssl-simclr"): 0.02},
                    finetune={("far", "tl"): -0.06, ("far", "ssl-simclr"): -0.04, ("near", "tl"): -0.03,
                              ("near", "ssl-simclr"): -0.01})
    text = domain.finding(merged)
    assert "Of 2 source pools, near is nearest to breastmnist (Fréchet distance 1.00) and far farthest (3.00)." in text
    assert ("Linear probe: the largest mean AUC gain over scratch is SSL SimCLR's after pre-training on far "
            "(+0.080, seed s.d. 0.020), and the nearest pool gave 1 of 2 pre-trained arms their best result.") in text
    assert ("Fine-tuning: no pre-trained arm beats scratch's mean AUC; the smallest loss is SSL SimCLR's after "
            "pre-training on near (-0.010, seed s.d. 0.020), and the nearest pool gave 2 of 2") in text
    assert "means over 3 seeds with no test" in text
    one_seed = domain.finding(_gains({("near", "tl"): 0.02}, {("near", "tl"): 0.01}, std=math.nan).assign(seeds=1))
    assert "(+0.020, one seed)." in one_seed and "means over 1 seed with no test" in one_seed
    assert domain.finding(merged.iloc[:0]).startswith("No stored gains")


# -------------------------------------------------------------------------------------- 7 robustness


def _scores():
    """Two arms, two seeds, two families: at severity 1 TL is hurt less, at severity 5 SSL BYOL is."""
    drop = {("tl", 1): (-0.01, -0.01), ("tl", 5): (-0.10, -0.06), ("ssl-byol", 1): (-0.05, -0.03),
            ("ssl-byol", 5): (-0.04, -0.02)}  # per seed, the mean over the families
    rows = []
    for arm in ("tl", "ssl-byol"):
        for seed in (0, 1):
            rows.append(dict(arm=arm, target="breastmnist", protocol="linear", seed=seed, family="clean", severity=0,
                             auc=0.8))
            for severity in (1, 5):
                mean = drop[(arm, severity)][seed]
                for family, spread in (("gaussian_noise", -0.01), ("pixelate", 0.01)):
                    rows.append(dict(arm=arm, target="breastmnist", protocol="linear", seed=seed, family=family,
                                     severity=severity, auc=0.8 + mean + spread))
    return pd.DataFrame(rows)


def test_the_robustness_finding_ranks_arms_at_the_strongest_severity_with_the_range_over_seeds():
    text = corruptions.finding(_scores(), "auc")
    assert text.startswith("At severity 5, the strongest evaluated, each model's test AUC is compared with its clean "
                           "score (mean change over 2 corruption families and 2 seeds).")
    assert ("Linear probe: SSL BYOL keeps its clean AUC best (-0.030; seeds -0.040 to -0.020) and TL (supervised) "
            "worst (-0.080; seeds -0.100 to -0.060).") in text
    assert text.endswith("No test is made: read a difference against the range over seeds.")
    one = corruptions.finding(_scores().query("seed == 0"), "auc")
    assert "SSL BYOL keeps its clean AUC best (-0.040) and TL (supervised) worst (-0.100)." in one
    assert one.endswith("one seed gives no spread to read a difference against.")
    assert corruptions.finding(_scores().iloc[:0]).startswith("No stored corruption scores")


# ---------------------------------------------------------------------------------- 8 explainability


def test_the_explainability_finding_names_the_best_and_worst_separated_features_per_protocol():
    scores = {("scratch", "linear"): -0.01, ("tl", "linear"): 0.20, ("ssl-byol", "linear"): 0.05,
              ("scratch", "finetune"): 0.30, ("tl", "finetune"): math.nan, ("ssl-byol", "finetune"): 0.10}
    text = explain.finding(scores)
    assert "Linear probe, highest for TL (supervised) at 0.20 and lowest for Scratch (random init) at -0.01" in text
    assert "Fine-tuning, highest for Scratch (random init) at 0.30 and lowest for SSL BYOL at 0.10." in text
    assert "for one seed and with no test" in text
    assert explain.finding({("tl", "linear"): math.nan}).startswith("No stored embeddings")


# ------------------------------------------------------------------------------------------- 9 speed


def test_the_speed_finding_names_the_fastest_and_slowest_pretraining_and_the_views_per_encoder():
    throughput = {"tl": (100, 120), "ssl-simclr": (40, 60), "ssl-byol": (20, 30), "bridge-simclr": (45, 55),
                  "fusion": (0, 0)}  # fusion trains nothing: no rate of its own, never "the slowest"
    views = {"tl": 1000, "ssl-simclr": 2000, "ssl-byol": 2000, "bridge-simclr": 3000, "fusion": 3000}
    cost = pd.DataFrame([dict(target=t, arm=a, images_per_s=throughput[a][i], encoder_views_in_all=views[a],
                              epochs=0 if a == "fusion" else 10, device="cpu", precision="float32")
                         for i, t in enumerate(("breastmnist", "retinamnist")) for a in throughput])
    text = speed.finding(cost)
    assert ("Pre-training on cpu (float32) ran fastest for TL (supervised) at 110 images/s and slowest for SSL BYOL "
            "at 25 images/s (4.4x slower), mean over 2 source pools") in text
    assert ("TL (supervised) 1,000; SSL SimCLR and SSL BYOL 2.0x as many; Bridge TL→SimCLR and Fusion TL+SimCLR 3.0x "
            "as many.") in text
    assert speed.finding(cost.iloc[:0]).startswith("No pre-trained arm")


# ----------------------------------------------------------------------------------------- 10 summary


def test_the_summary_finding_counts_called_leads_calls_over_scratch_and_tls_comparisons():
    table = pd.DataFrame({"winner": ["ssl-byol", "ssl-byol", "scratch"], "beyond_noise": [True, False, False],
                          "p_scratch_adjusted": [0.01, 0.20, math.nan], "pretraining_in_ci": [False] * 3})
    comparisons = pd.DataFrame({"other": ["ssl-byol"] * 3, "beyond_noise": [True, False, False],
                                "difference": [-0.05, 0.01, 0.02]})
    text = prose.summary_finding(table, comparisons, "smoke")
    assert ("Over 3 conditions (target x scenario x protocol), the highest mean test AUC came from SSL BYOL in 2 and "
            "Scratch (random init) in 1; after a Holm correction the evidence calls the leader's margin in 1 of them "
            "(SSL BYOL in 1).") in text
    assert "A pre-trained arm is called ahead of scratch in 1 of 3 conditions: SSL BYOL in 1." in text
    assert "TL is ahead of SSL BYOL in 0, behind in 1 and not decided in 2 of 3." in text
    assert "This is the smoke execution, with one pre-training per arm" in text
    assert prose.summary_finding(table.iloc[:0], comparisons, "smoke").startswith("No stored results")
