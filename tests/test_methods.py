"""The methods registry: every list of arms is read from it, a method is one module plus its entry, and each
registered method fits the captured training step (no host synchronisation). VICReg's loss is lightly's."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from lightly.loss import VICRegLoss as LightlyVICRegLoss
from torch.profiler import ProfilerActivity, profile

from benchmarks import throughput as bench
from benchmarks import throughput_results
from medlib import experiment, methods, plots, profiles
from medlib.cli import main
from medlib.experiment import AdaptConfig, run_adaptation
from medlib.methods.base import Arm
from medlib.methods.vicreg import VICRegLoss
from medlib.pretrain import PretrainConfig, build_method, pretrain
from medlib.validation import ParameterError

HOST_SYNCS = {"aten::nonzero", "aten::_local_scalar_dense", "aten::item", "aten::masked_select"}


def aten_ops(fn) -> set:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {e.key for e in prof.key_averages()}


def test_every_list_of_arms_is_the_registrys():
    assert methods.ARMS == ("scratch", "imagenet", "tl", "ssl-simclr", "ssl-byol", "ssl-vicreg", "bridge-simclr",
                            "fusion")
    assert methods.PRETRAINED_ARMS == tuple(methods.METHODS) == methods.ARMS[2:]
    assert methods.TRAINING_ARMS == methods.ARMS[2:-1]  # fusion has no pre-training step of its own
    assert experiment.ARMS == plots.ARMS == methods.ARMS
    assert list(plots.ARM_COLOURS) == list(methods.ARMS) and plots.arm_label("ssl-vicreg") == "SSL VICReg"
    assert bench.METHODS == ("simclr", "byol", "vicreg") and throughput_results.METHOD_LABELS["vicreg"] == "VICReg"


def test_a_taken_arm_name_or_colour_is_refused_and_an_unknown_arm_is_one_line():
    class Copy(methods.SimCLR):
        arm = Arm("ssl-simclr2", "copy", methods.SimCLR.arm.colour, 99)

    with pytest.raises(ValueError, match="arm colour '#d62728' is taken"):
        methods.register(Copy)
    with pytest.raises(ParameterError, match="arm='scratch' is not allowed; choose one of: tl, ssl-simclr"):
        methods.get("scratch")


@pytest.mark.parametrize("arm", methods.TRAINING_ARMS)
def test_every_methods_step_has_no_host_synchronisation(arm, one_thread):
    """What a CUDA graph cannot capture (a device-to-host read) shows on the CPU as one of these aten calls."""
    method = build_method(PretrainConfig(arm, ("pneumoniamnist",), ("breastmnist",)),
                          torch.tensor([5, 3, 2]))
    images = torch.randint(0, 256, (4, 3, 28, 28), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 0])
    ops = aten_ops(lambda: method.loss(images, labels, torch.Generator().manual_seed(0)).backward())
    assert not ops & HOST_SYNCS


@pytest.mark.parametrize("n, dim", [(2, 3), (16, 64), (64, 256)])
def test_vicreg_loss_equals_lightlys_in_value_and_gradient(n, dim):
    g = torch.Generator().manual_seed(n)
    z0, z1 = (torch.randn(n, dim, generator=g, requires_grad=True) for _ in range(2))
    expected, got = LightlyVICRegLoss()(z0, z1), VICRegLoss()(z0, z1)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6)
    for a, b in zip(torch.autograd.grad(got, (z0, z1)), torch.autograd.grad(expected, (z0, z1))):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
    assert aten_ops(lambda: LightlyVICRegLoss()(z0, z1)) & HOST_SYNCS  # what the restated covariance avoids


def test_vicreg_pretrains_and_adapts_like_any_arm(real_data, one_thread, tmp_path):
    cfg = PretrainConfig("ssl-vicreg", ("pneumoniamnist",), ("breastmnist",), epochs=1, batch_size=16,
                         max_images=32)
    result = pretrain(cfg, tmp_path, device=torch.device("cpu"), progress=False)
    assert math.isfinite(result["history"][0]["loss"]) and (tmp_path / "encoder.pt").exists()
    run = run_adaptation(AdaptConfig("ssl-vicreg", "breastmnist", "linear", epochs=1, max_train_images=32,
                                     pretrain=cfg), progress=False)
    assert 0 <= run["test"]["auc"] <= 1
    assert "ssl-vicreg" in profiles.KNOBS["arms"].check("arms", ["ssl-vicreg"])


def test_vicregs_standard_recipe_is_byols_two_views():
    model, _, _ = bench.build("vicreg", torch.device("cpu"), 4)
    assert isinstance(model, methods.VICReg) and model.views(
        torch.zeros(4, 3, 28, 28, dtype=torch.uint8), torch.Generator()).shape == (8, 3, 28, 28)
    assert type(bench.lightly_transform("vicreg", 28)).__name__ == "BYOLTransform"


def test_cli_help_lists_the_registered_arms(capsys):
    for command, arms in (("pretrain", "tl, ssl-simclr, ssl-byol, ssl-vicreg, bridge-simclr or fusion"),
                          ("finetune", "scratch, imagenet, tl, ssl-simclr, ssl-byol, ssl-vicreg, bridge-simclr or "
                                       "fusion")):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "".join(arms.split()) in "".join(capsys.readouterr().out.split())  # help wraps at hyphens too


def test_each_method_pre_trains_at_its_own_learning_rate_and_the_others_keys_keep_theirs():
    """VICReg diverged at the other methods' 0.06 (NaN in epoch 3 of the quick profile): its config carries its own
    0.02, so its run key says so, while the other arms' configs (and so their stored runs' keys) keep 0.06."""
    from medlib.pretrain import PretrainConfig

    rates = {a: PretrainConfig(a, ("pneumoniamnist",), ("breastmnist",)).to_dict()["lr"]
             for a in ("tl", "ssl-simclr", "ssl-byol", "ssl-vicreg")}
    assert rates == {"tl": 0.06, "ssl-simclr": 0.06, "ssl-byol": 0.06, "ssl-vicreg": 0.02}
    assert PretrainConfig("ssl-vicreg", ("pneumoniamnist",), lr=0.1).lr == 0.1  # a given rate wins


def test_tl_weights_every_class_of_its_pool_equally():
    """The supervised arm's cross-entropy is class-balanced (n / (k * count)): a pool that is 90 % one class
    contributes as much loss per class as a balanced one; its config names the recipe, so that the key changes
    with it."""
    counts = torch.tensor([90, 10])
    method = build_method(PretrainConfig("tl", ("pneumoniamnist",), ("breastmnist",)), counts)
    assert torch.allclose(method.class_weight, torch.tensor([100 / 180, 100 / 20]))
    assert torch.allclose(method.class_weight * counts, torch.tensor(50.0))
    cfg = PretrainConfig("tl", ("pneumoniamnist",), ("breastmnist",))
    assert cfg.recipe == methods.get("tl").recipe != methods.get("ssl-simclr").recipe
    with pytest.raises(ParameterError, match="recipe='old' is not allowed"):
        PretrainConfig("tl", ("pneumoniamnist",), ("breastmnist",), recipe="old")


def test_the_bridge_starts_simclr_from_the_stored_tl_encoder(tmp_path, real_data, one_thread):
    """bridge-simclr pre-trains TL first (stored as TL's own run, which the TL arm then reuses), loads its encoder
    and continues with SimCLR: its first epoch's kNN starts from TL's features, not from a random encoder's."""
    from medlib.experiment import pretrained
    from medlib.pretrain import starting_points
    from medlib.store import RunStore, load_torch

    store = RunStore(tmp_path)
    cfg = PretrainConfig("bridge-simclr", ("pneumoniamnist",), ("breastmnist",), epochs=1, batch_size=32,
                         max_images=64)
    (first,) = starting_points(cfg)
    assert first == PretrainConfig("tl", ("pneumoniamnist",), ("breastmnist",), epochs=1, batch_size=32,
                                   max_images=64)
    assert starting_points(first) == () and cfg.recipe.endswith(f"from the TL encoder ({first.recipe})")
    bridge = pretrained(cfg, store, progress=False)
    assert (store.path("pretrain", first.to_dict()) / "result.json").exists()  # TL ran first, as its own run
    tl = load_torch(store.path("pretrain", first.to_dict()) / "encoder.pt")
    moved = load_torch(Path(bridge["run_dir"]) / "encoder.pt")
    assert tl.keys() == moved.keys() and any(not torch.equal(tl[k], moved[k]) for k in tl)
    scratch = PretrainConfig("ssl-simclr", ("pneumoniamnist",), ("breastmnist",), epochs=1, batch_size=32,
                             max_images=64)
    assert pretrained(scratch, store, progress=False)["history"] != bridge["history"]


def test_fusion_concatenates_the_stored_tl_and_simclr_encoders_unchanged(tmp_path, real_data, one_thread):
    """The fusion arm trains nothing: its stored encoder is TL's and SimCLR's encoders of the same pool, weight for
    weight, side by side; its features are theirs concatenated (1,024 for two ResNet-18s), and it adapts like any
    arm, Grad-CAM included (the mean of both parts' maps)."""
    from medlib.data import load
    from medlib.experiment import AdaptConfig, load_model, pretrained, run_adaptation
    from medlib.explain import gradcam
    from medlib.pretrain import features, lineage, load_encoder, starting_points
    from medlib.store import RunStore, load_torch

    store = RunStore(tmp_path)
    cfg = PretrainConfig("fusion", ("pneumoniamnist",), ("breastmnist",), epochs=1, batch_size=32, max_images=64)
    tl, simclr = starting_points(cfg)
    assert (tl.arm, simclr.arm) == ("tl", "ssl-simclr") and lineage(cfg) == [cfg, tl, simclr]
    fused = pretrained(cfg, store, progress=False)
    assert fused["history"] == [] and fused["seconds"] == 0
    weights = load_torch(Path(fused["run_dir"]) / "encoder.pt")
    for i, part in enumerate((tl, simclr)):
        own = load_torch(store.path("pretrain", part.to_dict()) / "encoder.pt")
        assert all(torch.equal(weights[f"parts.{i}.{k}"], v) for k, v in own.items())
    images = load("breastmnist", "test", 28).images[:8]
    encoders = [load_encoder(c, store.path("pretrain", c.to_dict())) for c in (cfg, tl, simclr)]
    f_fused, f_tl, f_simclr = (features(e, images, torch.device("cpu")) for e in encoders)
    assert f_fused.shape == (8, 1024) and torch.allclose(f_fused, torch.cat([f_tl, f_simclr], 1))
    adapt = AdaptConfig("fusion", "breastmnist", "finetune", epochs=1, max_train_images=32, pretrain=cfg,
                        keep_model=True)
    assert 0 <= run_adaptation(adapt, store, progress=False)["test"]["auc"] <= 1
    maps = gradcam(load_model(adapt, store), images[:2], [0, 1])
    assert maps.shape == (2, 28, 28) and np.isfinite(maps).all()


def test_a_profiles_pretraining_rates_reach_each_arm_and_the_encoders_it_starts_from():
    """``pretrain_lrs`` sets an arm's rate and, for an arm that starts from other arms' encoders (the bridge,
    fusion), the rate of those pre-trainings too; without it every config (and so every stored run's key) is as
    before the knob existed."""
    from medlib.pretrain import PRETRAINED_ARMS, starting_points
    from medlib.profiles import parameters
    from medlib.study import adapt_configs, pretrain_config

    P = parameters(profile="quick")
    default = {a: pretrain_config(P, a, "breastmnist") for a in PRETRAINED_ARMS}
    assert all("start_lrs" not in c.to_dict() for c in default.values())
    assert all("start_lrs" not in c.to_dict()["pretrain"] for c in adapt_configs(P, "breastmnist", seeds=[0])
               if c.pretrain)
    P = parameters(profile="quick", pretrain_lrs="{'tl': 0.12}")  # as papermill -p passes it
    tuned = {a: pretrain_config(P, a, "breastmnist") for a in PRETRAINED_ARMS}
    assert tuned["tl"].lr == 0.12 and tuned["ssl-simclr"] == default["ssl-simclr"]
    assert starting_points(tuned["bridge-simclr"]) == (tuned["tl"],)
    assert tuned["bridge-simclr"].lr == default["bridge-simclr"].lr and tuned["bridge-simclr"] != default["bridge-simclr"]
    assert starting_points(tuned["fusion"]) == (tuned["tl"], default["ssl-simclr"])
    with pytest.raises(ParameterError, match="pretrain_lrs='scratch' is not allowed"):
        parameters(profile="quick", pretrain_lrs={"scratch": 0.1})
    with pytest.raises(ParameterError, match=r"pretrain_lrs\['tl'\]=0 is not allowed"):
        parameters(profile="quick", pretrain_lrs={"tl": 0})


def test_a_profiles_method_options_reach_the_method_and_the_encoders_an_arm_starts_from():
    """``pretrain_options`` sets SimCLR's temperature and BYOL's momentum, for the arm and for the pre-trainings
    an arm starts from (fusion's SimCLR); a value equal to the default is the default's run (same key), and no
    config that names none carries the fields."""
    import torch

    from medlib.pretrain import PRETRAINED_ARMS, build_method, starting_points
    from medlib.profiles import parameters
    from medlib.study import pretrain_config

    P = parameters(profile="quick")
    default = {a: pretrain_config(P, a, "breastmnist") for a in PRETRAINED_ARMS}
    assert all({"options", "start_options"}.isdisjoint(c.to_dict()) for c in default.values())
    P = parameters(profile="quick", pretrain_options="{'ssl-simclr': {'temperature': 0.2}, "
                                                     "'ssl-byol': {'momentum': 0.996}, 'bridge-simclr': {'temperature': 0.5}}")
    tuned = {a: pretrain_config(P, a, "breastmnist") for a in PRETRAINED_ARMS}
    assert tuned["ssl-simclr"].options == (("temperature", 0.2),) and tuned["bridge-simclr"] == default["bridge-simclr"]
    assert starting_points(tuned["fusion"]) == (default["tl"], tuned["ssl-simclr"])
    assert tuned["fusion"] != default["fusion"] and tuned["tl"] == default["tl"]
    counts = torch.ones(2)
    assert build_method(tuned["ssl-simclr"], counts).criterion.temperature == 0.2
    assert build_method(default["ssl-simclr"], counts).criterion.temperature == 0.5
    byol = build_method(tuned["ssl-byol"], counts)
    assert byol.target_weight(0, 10) == pytest.approx(1 - 0.996)
    assert build_method(default["ssl-byol"], counts).target_weight(0, 10) == pytest.approx(1 - 0.99)
    for bad, message in [({"ssl-vicreg": {"temperature": 0.1}}, "ssl-vicreg has no options to set"),
                         ({"ssl-simclr": {"tau": 0.1}}, "'tau' is not allowed; choose one of: temperature"),
                         ({"ssl-simclr": {"temperature": 0}}, r"\['temperature'\]=0 is not allowed"),
                         ({"ssl-byol": {"momentum": 1}}, r"\['momentum'\]=1 is not allowed"),
                         ({"fusion": {}}, "pretrain_options='fusion' is not allowed")]:
        with pytest.raises(ParameterError, match=message):
            parameters(profile="quick", pretrain_options=bad)
