"""medlib.plan is the one place the chapters' grids are built: chapters 06 and 10 run what they ran before."""

import subprocess
import sys

import pandas as pd
import pytest

from medlib import decision, plan
from medlib.domain import NO_POOL, with_pools
from medlib.profiles import parameters
from medlib.pretrain import PRETRAINED_ARMS
from medlib.study import adapt_configs


def _summary_before(P):
    """decision.study_configs as it was before plan built it (commit 80434d3)."""
    configs = [c for t in P.targets for c in adapt_configs(P, t)]
    fractions = [f for f in P.label_fractions if not (f == 1 and P.target in P.targets)]
    configs += [c for f in fractions for c in adapt_configs(P, P.target, label_fraction=f)]
    if P.per_class is not None:
        configs += adapt_configs(P, P.target, per_class=P.per_class)
    configs += [c for r in P.imbalance_ratios
                for c in adapt_configs(P, P.target, imbalance_ratio=r, minority=P.minority)]
    # and, since the label-noise chapter, its noisy runs (rate 0 is the head-to-head run)
    configs += [c for r in P.label_noise_rates if r for c in adapt_configs(P, P.target, label_noise=r)]
    return configs


def _domain_before(P):
    """The runs of domain.domain_grid(P, P.target, P.source_pools) before chapter 06 used plan (commit 80434d3),
    with the pool each was labelled with."""
    pretrained = [a for a in P.arms if a in PRETRAINED_ARMS]
    others = [a for a in P.arms if a not in PRETRAINED_ARMS]
    runs = [(c, NO_POOL) for c in adapt_configs(P, P.target, arms=others)] if others else []
    return runs + [(c, "+".join(pool)) for pool in P.source_pools if pretrained
                   for c in adapt_configs(P, P.target, arms=pretrained, sources=pool)]


@pytest.mark.parametrize("profile", ["smoke", "quick"])
def test_summary_and_domain_plans_are_the_grids_the_chapters_ran_before(profile):
    P = parameters(profile=profile)
    assert decision.study_configs(P) == plan.study_configs(P) == _summary_before(P)
    assert plan.CHAPTERS["10_summary"](P) == _summary_before(P)
    before = _domain_before(P)
    configs = plan.domain(P)
    assert configs == [c for c, _ in before] and plan.CHAPTERS["06_domain"](P) == configs
    assert with_pools(pd.DataFrame(index=range(len(configs))), configs)["pool"].tolist() == [p for _, p in before]


def test_plan_imports_alone_and_plots_run_no_experiments():
    code = ("import sys, medlib.plan; import medlib.plots; "
            "print([m for m in ('medlib.decision', 'medlib.domain') if m in sys.modules])")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "[]", run.stderr
    run = subprocess.run([sys.executable, "-c", "import sys, medlib.plots; print('medlib.experiment' in sys.modules)"],
                         capture_output=True, text=True)
    assert run.stdout.strip() == "False", run.stderr


def test_no_pool_holds_a_dataset_cut_from_its_targets_patients():
    """OrganA/C/SMNIST are one CT collection in three planes: in the full profile OrganCMNIST's pool leaves out
    OrganA and OrganS, and every other target's pool keeps them."""
    P = parameters(profile="full")
    pools = {t: by_arm["tl"].sources for t, by_arm in plan.pretrainings(P).items()}
    assert not {"organamnist", "organcmnist", "organsmnist"} & set(pools["organcmnist"])
    assert {"organamnist", "organsmnist"} <= set(pools["breastmnist"]) and "breastmnist" not in pools["breastmnist"]
