import math

import pandas as pd
import pytest

from medlib import speed


def test_time_to_95_percent_is_the_first_epoch_at_the_threshold():
    history = [{"epoch": 1, "val_auc": 0.60, "seconds": 1.0}, {"epoch": 2, "val_auc": 0.78, "seconds": 2.0},
               {"epoch": 3, "val_auc": 0.80, "seconds": 3.0}, {"epoch": 4, "val_auc": 0.79, "seconds": 4.0}]
    hit = speed.time_to_fraction(history, setup_seconds=0.5)
    assert hit["final_val_auc"] == 0.80 and hit["threshold"] == pytest.approx(0.76)
    assert hit["epoch"] == 2 and hit["seconds"] == pytest.approx(2.5)
    assert speed.time_to_fraction(history, fraction=1.0)["epoch"] == 3
    assert math.isnan(speed.time_to_fraction([])["seconds"])


def test_speed_summary_averages_per_arm_and_protocol():
    df = pd.DataFrame([dict(arm="tl", protocol="linear", epochs_to_95=e, seconds_to_95=s, seconds=10.0,
                            final_val_auc=0.8) for e, s in ((1, 2.0), (3, 4.0))])
    out = speed.speed_summary(df).iloc[0]
    assert out["epochs_to_95_mean"] == 2 and out["seconds_to_95_mean"] == 3.0 and out["runs"] == 2


def test_adaptation_speed_reads_the_stored_history(real_data):
    from medlib.profiles import parameters
    from medlib.study import adapt_configs
    P = parameters(profile="smoke", max_train_images=32, finetune_epochs=3)
    df = speed.adaptation_speed(adapt_configs(P, "breastmnist", arms=["scratch"], protocols=["finetune"]))
    row = df.iloc[0]
    assert row["epochs"] == 3 and 1 <= row["epochs_to_95"] <= 3
    assert 0 < row["seconds_to_95"] <= row["seconds"] + 1e-9


def test_pretraining_cost_counts_views_and_the_bridges_starting_point(real_data, one_thread):
    """Compute-matched counts: an SSL step passes two views of each image, TL's one; the bridge's encoder went
    through TL's pre-training and its own, and its totals say so."""
    from medlib.profiles import parameters
    P = parameters(profile="smoke", arms=["tl", "bridge-simclr"], targets=["breastmnist"], pretrain_max_images=64,
                   pretrain_batch_size=32)
    cost = speed.pretraining_cost(P).set_index("arm")
    tl, bridge = cost.loc["tl"], cost.loc["bridge-simclr"]
    assert tl["encoder_views"] == tl["images"] * tl["epochs"] == tl["encoder_views_in_all"]
    assert bridge["encoder_views"] == 2 * tl["encoder_views"]
    assert bridge["encoder_views_in_all"] == 3 * tl["encoder_views"]
    assert bridge["seconds_in_all"] == pytest.approx(bridge["seconds"] + tl["seconds"])


def test_pretraining_cost_counts_both_encoders_of_the_fusion(real_data, one_thread):
    """The fusion arm trains nothing (no epochs, no views of its own), but its encoder went through TL's and
    SimCLR's pre-trainings: its totals are theirs added up."""
    from medlib.profiles import parameters
    P = parameters(profile="smoke", arms=["tl", "ssl-simclr", "fusion"], targets=["breastmnist"],
                   pretrain_max_images=64, pretrain_batch_size=32)
    cost = speed.pretraining_cost(P).set_index("arm")
    tl, simclr, fusion = cost.loc["tl"], cost.loc["ssl-simclr"], cost.loc["fusion"]
    assert fusion["epochs"] == 0 and fusion["encoder_views"] == 0 and simclr["encoder_views"] == 2 * tl["encoder_views"]
    assert fusion["encoder_views_in_all"] == tl["encoder_views"] + simclr["encoder_views"]
    assert fusion["seconds_in_all"] == pytest.approx(tl["seconds"] + simclr["seconds"])
