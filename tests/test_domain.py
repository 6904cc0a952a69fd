import numpy as np
import pandas as pd
import pytest
import torch
from scipy.linalg import sqrtm

from medlib import domain
from medlib.models import backbone
from medlib.profiles import parameters


def _gaussian(n=400, d=8, shift=0.0, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


def test_frechet_distance_of_a_set_to_itself_is_zero():
    a = _gaussian()
    assert domain.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_matches_the_closed_form_with_scipy_sqrtm():
    a, b = _gaussian(seed=0), 1.5 * _gaussian(seed=1) + 0.3
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = ((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * sqrtm(s_a @ s_b).real)
    assert domain.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_grows_with_the_shift_and_is_symmetric():
    a = _gaussian(seed=0)
    values = [domain.frechet_distance(a, _gaussian(seed=1, shift=s)) for s in (0.0, 0.5, 1.0, 2.0)]
    assert values == sorted(values) and values[0] < 0.2 * values[1]
    # a pure mean shift s in d dimensions adds about d * s^2
    assert values[-1] == pytest.approx(8 * 4, rel=0.15)
    b = _gaussian(seed=2, shift=1.0)
    assert domain.frechet_distance(a, b) == pytest.approx(domain.frechet_distance(b, a), rel=1e-6)


def test_mmd_is_near_zero_for_one_distribution_and_grows_with_the_shift():
    a = _gaussian(seed=0)
    values = [domain.mmd_rbf(a, _gaussian(seed=1, shift=s)) for s in (0.0, 0.5, 1.0)]
    assert abs(values[0]) < 0.01 and values[0] < values[1] < values[2]
    b = _gaussian(seed=3, shift=0.5)
    assert domain.mmd_rbf(a, b) == pytest.approx(domain.mmd_rbf(b, a), rel=1e-9)
    with pytest.raises(ValueError):
        domain.mmd_rbf(a[:1], b)


def test_reference_encoder_is_the_scratch_arms_initial_encoder():
    torch.manual_seed(0)
    scratch = backbone("resnet18", "imagenet")  # as experiment.encoder_for builds the scratch arm for seed 0
    ref = domain.reference_encoder("resnet18", "imagenet", seed=0)
    assert all(torch.equal(p, q) for p, q in zip(scratch.state_dict().values(), ref.state_dict().values()))
    assert not ref.training


def test_relation_names_modality_and_colour():
    assert domain.relation(["pneumoniamnist"], "breastmnist") == "other modality, grey (target: grey)"
    assert domain.relation(["chestmnist"], "pneumoniamnist").startswith("same modality, grey")
    assert domain.relation(["retinamnist", "breastmnist"], "breastmnist") == \
        "mixed modality, grey + colour (target: grey)"


def test_distances_on_real_pools_put_the_target_itself_closest(real_data):
    P = parameters(profile="smoke", pretrain_max_images=200)
    table = domain.distances(P, "breastmnist", [["retinamnist"], ["pneumoniamnist"], ["breastmnist"]])
    assert list(table["pool"]) == ["retinamnist", "pneumoniamnist", "breastmnist"]
    assert (table["n"] == 200).all()
    by_pool = table.set_index("pool")
    # breastmnist's own train images (val/test excluded) are far closer than any other modality
    assert by_pool.loc["breastmnist", "frechet"] < 0.2 * by_pool[["frechet"]].drop("breastmnist").min().item()
    assert by_pool.loc["breastmnist", "mmd2"] < by_pool["mmd2"].drop("breastmnist").min()


def test_gains_subtract_the_scratch_mean_of_the_same_protocol():
    import pandas as pd
    rows = [dict(arm="scratch", target="t", protocol="linear", seed=s, auc=0.6 + 0.02 * s, pool=None, skipped=None)
            for s in range(3)]
    rows += [dict(arm="tl", target="t", protocol="linear", seed=s, auc=0.7 + 0.02 * s, pool="a", skipped=None)
             for s in range(3)]
    rows += [dict(arm="tl", target="t", protocol="linear", seed=s, auc=0.5, pool="b", skipped=None) for s in range(3)]
    g = domain.gains(pd.DataFrame(rows)).set_index("pool")
    assert g.loc["a", "gain"] == pytest.approx(0.1) and g.loc["b", "gain"] == pytest.approx(-0.12)
    assert g.loc["a", "scratch"] == pytest.approx(0.62)


def test_correlation_is_spearman_over_pools_and_refuses_fewer_than_three():
    import pandas as pd
    rows = [dict(arm="tl", protocol="linear", pool=p, frechet=d, mmd2=m, gain=g)
            for p, d, m, g in (("a", 1.0, 0.1, 0.3), ("b", 2.0, 0.3, 0.1), ("c", 3.0, 0.2, 0.0))]
    out = domain.correlation(pd.DataFrame(rows)).iloc[0]
    assert out["rho_frechet"] == pytest.approx(-1.0) and out["rho_mmd2"] == pytest.approx(-0.5)
    out = domain.correlation(pd.DataFrame(rows[:2])).iloc[0]
    assert np.isnan(out["rho_frechet"]) and "3 pools" in out["note"]


def test_findings_name_the_nearest_pool_and_each_arms_best_pool():
    merged = pd.DataFrame([
        dict(pool=p, arm=a, protocol="linear", gain=g, gain_std=0.01, frechet=d, mmd2=d / 10)
        for p, d, gains in [("near", 1.0, (0.05, 0.02)), ("mid", 2.0, (0.03, 0.04)), ("far", 3.0, (0.01, 0.00))]
        for a, g in zip(("tl", "ssl-simclr"), gains)])
    text = domain.findings(merged, domain.correlation(merged))
    assert "near (1.00), mid (2.00), far (3.00)" in text
    assert "TL (supervised) gains most with near (+0.050 AUC" in text and "ρ(distance, gain) = -1.0" in text
    assert "SSL SimCLR gains most with mid (+0.040 AUC" in text and "ρ(distance, gain) = -0.5" in text
    worse = merged.assign(gain=merged["gain"] - 0.1)
    assert "TL (supervised) loses least with near (-0.050 AUC" in domain.findings(worse, domain.correlation(worse))
