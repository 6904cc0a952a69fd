import numpy as np
import pandas as pd
import pytest
import torch

from medlib import corruptions
from medlib.validation import ParameterError


def _images(n=16, c=1, size=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    # structure at several scales (like a natural image), mid-range values so no family saturates at once
    x = sum(w * torch.nn.functional.interpolate(torch.rand(n, c, k, k, generator=g), size=(size, size),
                                                mode="bilinear", align_corners=False)
            for k, w in ((3, 0.5), (9, 0.3), (size, 0.2)))
    return (40 + 160 * x).round().to(torch.uint8)


@pytest.mark.parametrize("family", list(corruptions.FAMILIES))
@pytest.mark.parametrize("channels", [1, 3])
def test_corruption_grows_with_severity_is_seeded_and_keeps_shape(family, channels):
    x = _images(c=channels)
    assert torch.equal(corruptions.corrupt(x, family, 0), x)
    out = [corruptions.corrupt(x, family, s, seed=1) for s in range(6)]
    assert all(o.dtype == torch.uint8 and o.shape == x.shape for o in out)
    change = [(o.float() - x.float()).abs().mean().item() for o in out]
    assert change[1] > 0
    assert all(b >= a - 1e-6 for a, b in zip(change, change[1:])), change
    assert change[5] > change[1]
    assert torch.equal(corruptions.corrupt(x, family, 3, seed=1), out[3])


def test_random_families_differ_between_seeds():
    x = _images()
    for family in ("gaussian_noise", "speckle_noise", "impulse_noise", "motion_blur"):
        assert not torch.equal(corruptions.corrupt(x, family, 3, seed=0), corruptions.corrupt(x, family, 3, seed=1))


def test_spatial_parameters_scale_with_image_size():
    blur = corruptions.parameter("gaussian_blur", 5)
    assert corruptions.parameter("gaussian_blur", 5, 64) == pytest.approx(blur * 64 / 28)
    assert corruptions.parameter("jpeg_compression", 2, 64) == corruptions.parameter("jpeg_compression", 2, 28)


def test_bad_family_severity_or_dtype_is_refused():
    x = _images()
    with pytest.raises(ParameterError):
        corruptions.corrupt(x, "snow", 1)
    with pytest.raises(ParameterError):
        corruptions.corrupt(x, "pixelate", 6)
    with pytest.raises(ParameterError):
        corruptions.corrupt(x.float(), "pixelate", 1)


def test_brightness_and_contrast_follow_pil():
    from PIL import Image, ImageEnhance
    x = _images(n=1, c=3)
    img = Image.fromarray(x[0].permute(1, 2, 0).numpy())
    for family, enhancer in (("brightness_down", ImageEnhance.Brightness), ("contrast_down", ImageEnhance.Contrast)):
        ours = corruptions.corrupt(x, family, 4)[0].permute(1, 2, 0).numpy().astype(int)
        pil = np.asarray(enhancer(img).enhance(corruptions.parameter(family, 4))).astype(int)
        assert abs(ours - pil).max() <= 2, family


def test_drops_and_summary_subtract_the_clean_metric():
    rows = []
    for seed in (0, 1):
        base = dict(arm="tl", target="t", protocol="linear", seed=seed)
        rows.append(base | dict(family="clean", severity=0, auc=0.8, acc=0.7))
        for family, d in (("a", 0.1), ("b", 0.3)):
            rows.append(base | dict(family=family, severity=1, auc=0.8 - d / 2, acc=0.7 - d))
    df = pd.DataFrame(rows)
    d = corruptions.drops(df)
    assert d["acc_drop"].round(6).tolist() == [-0.1, -0.3, -0.1, -0.3]
    summary = corruptions.drop_summary(df, "acc")
    assert summary.loc[0, "severity 1"] == pytest.approx(-0.2)


def _robustness_config():
    from dataclasses import replace

    from medlib.profiles import parameters
    from medlib.study import adapt_configs
    P = parameters(profile="smoke", max_train_images=32)
    cfg = replace(adapt_configs(P, "breastmnist", arms=["scratch"], protocols=["linear"])[0], keep_model=True,
                  epochs=1)
    return corruptions.RobustnessConfig(cfg, families=("gaussian_noise",), severities=(5, 1))


def test_robustness_clean_row_reproduces_the_runs_test_metrics(real_data):
    from medlib.experiment import run_adaptation
    rc = _robustness_config()
    rows = corruptions.robustness_grid([rc]).to_dict("records")
    clean = rows[0]
    assert clean["family"] == "clean" and [r["severity"] for r in rows] == [0, 1, 5]
    stored = run_adaptation(rc.adapt)["test"]
    assert clean["auc"] == pytest.approx(stored["auc"], abs=1e-6)
    assert clean["acc"] == pytest.approx(stored["acc"], abs=1e-6)
    assert clean["minority_recall"] == pytest.approx(stored["minority_recall"], abs=1e-6)


def test_robustness_is_a_stored_run_read_back_identically_without_the_models_weights(real_data):
    from medlib.store import RunStore
    rc = _robustness_config()
    computed = corruptions.robustness(rc)
    store = RunStore()
    assert store.get("robustness", rc.to_dict()) == computed
    weights = list(store.root.rglob("*.pt"))
    assert weights
    for path in weights:
        path.unlink()
    assert corruptions.robustness(rc) == computed
    assert corruptions.robustness_grid([rc])["auc"].tolist() == [r["auc"] for r in computed["rows"]]


def test_robustness_config_is_refused_without_a_kept_model_or_with_a_bad_severity(real_data):
    from dataclasses import replace
    rc = _robustness_config()
    with pytest.raises(ParameterError, match="keep_model=True"):
        corruptions.RobustnessConfig(replace(rc.adapt, keep_model=False))
    with pytest.raises(ParameterError, match="severities=6"):
        corruptions.RobustnessConfig(rc.adapt, severities=(6,))


def test_findings_rank_arms_by_their_drop_at_the_strongest_severity():
    drop = pd.DataFrame({"arm": ["tl", "ssl-byol"], "protocol": ["linear", "linear"],
                         "severity 1": [-0.01, -0.02], "severity 5": [-0.10, -0.04]})
    text = corruptions.findings(drop, "auc")
    assert "severity 5: SSL BYOL -0.040, TL (supervised) -0.100 AUC" in text


def test_robustness_key_is_the_one_stored_runs_were_keyed_by(real_data):
    rc = _robustness_config()
    before = {"adapt": rc.adapt.to_dict(), "seed": 0, "severities": [1, 5],  # robustness(cfg, ...) before 82166e0
              "families": {"gaussian_noise": [corruptions.parameter("gaussian_noise", s) for s in range(1, 6)]}}
    assert rc.to_dict() == before
