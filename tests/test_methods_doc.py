"""The numbers of Methods (book/methods.md) that come from a benchmark are held to that benchmark's record."""

import re

from prose_sources import RESULTS, ROOT, flat, graph_check, jsonl, missing, rounded, span, table, wall_clock

METHODS = (ROOT / "book" / "methods.md").read_text()
NOTES = flat((ROOT / "benchmarks" / "README.md").read_text())


def _rows(table_head: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header line starts with ``table_head``."""
    return table(METHODS, table_head)[1]


PROBE_CHECK = RESULTS / "2026-11-29" / "cpu_probe_check"
NAMES = {"scratch": "random", "tl": "TL", "ssl-simclr": "SimCLR"}


def _probe_check() -> dict:
    """``{(encoder, "old" | "new"): row}`` from the probe check's rows."""
    return {(r["encoder"], r["probe"].split(":")[0]): r for r in jsonl(PROBE_CHECK / "probe_check.jsonl")}


def test_the_old_and_new_probe_table_is_the_probe_checks_rows():
    rows = [[NAMES[encoder], probe, *(f"{r[k]:.3f}" for k in ("val_auc", "test_auc", "test_balanced_acc")),
             f"{100 * r['test_pred_majority']:.1f} %", f"{r['train_loss']:.3f}", f"{r['C']:g}" if "C" in r else ""]
            for (encoder, probe), r in _probe_check().items()]
    assert len(rows) == 6
    assert _rows("| encoder | probe |") == rows


def test_the_sentences_on_the_probe_check_are_its_numbers():
    runs, encoders = _probe_check(), tuple(NAMES)

    def gain(column, encoder):
        return runs[encoder, "new"][column] - runs[encoder, "old"][column]

    def percent(probe):
        return f"{span([100 * runs[e, probe]['test_pred_majority'] for e in encoders], 0, ' % to ')} %"

    old = {e: runs[e, "old"]["test_auc"] for e in encoders}
    new = {e: runs[e, "new"]["test_auc"] for e in encoders}
    balanced = [gain("test_balanced_acc", e) for e in encoders]
    share = runs["scratch", "new"]["test_majority_share"]
    said = [f"The old probe answered the majority class for {percent('old')} of the test images",
            f"the new one for {percent('new')}, close to the class's share of the split (114 of 156 images, "
            f"{100 * share:.1f} %)", f"by {span([gain('val_auc', e) for e in encoders], 2, ' to ')} for every encoder",
            "({}, {} and {} iterations)".format(*(runs[e, "new"]["iterations"] for e in encoders)),
            f"raises balanced accuracy by {balanced[0]:.2f} (random) and {balanced[1]:.2f} (TL) and lowers SimCLR's by "
            f"{-balanced[2]:.2f}",
            "test AUC moved by {:+.3f} (random), {:+.3f} (TL) and {:+.3f} (SimCLR)".format(
                *(gain("test_auc", e) for e in encoders)).replace("-", "\u2212"),
            f"(old: SimCLR first by {old['ssl-simclr'] - max(old['scratch'], old['tl']):.3f}; new: random first, "
            f"SimCLR last, {new['scratch'] - new['ssl-simclr']:.3f} behind)",
            "kNN test AUCs are {:.3f} (random), {:.3f} (TL) and {:.3f} (SimCLR)".format(
                *(runs[e, "new"]["knn_auc"] for e in encoders))]
    assert 114 / 156 == share
    assert min(balanced[:2]) > 0 > balanced[2] and min(gain("val_auc", e) for e in encoders) > 0
    assert max(old, key=old.get) == "ssl-simclr" and sorted(new, key=new.get) == ["ssl-simclr", "tl", "scratch"]
    assert all(max(encoders, key=lambda e: runs[e, p]["val_auc"]) == "ssl-simclr" for p in ("old", "new"))
    assert missing(METHODS, said) == []


def test_the_first_probe_check_is_quoted_as_logged():
    """The run of 2026-11-28 (the recipes of then), quoted in a parenthesis."""
    log = (RESULTS / "2026-11-28" / "cpu_probe_check.log").read_text()
    logged = {(e, p): line.split()[-10:] for e, p, line in re.findall(r"^\s*(scratch|tl|ssl-simclr)\s+(old|new)(:.*)$",
                                                                     log, re.M)}
    runs = _probe_check()
    assert all(float(logged["scratch", p][0]) == round(runs["scratch", p]["val_auc"], 3) for p in ("old", "new"))
    assert missing(METHODS, ["for its TL and SimCLR encoders: {:.0f} % and {:.0f} % majority answers".format(
        *(100 * float(logged[e, "old"][3]) for e in ("tl", "ssl-simclr")))]) == []


def test_the_pretraining_rate_sweep_in_methods_is_the_committed_one():
    from benchmarks.pretrain_lr import table

    folder = ROOT / "benchmarks" / "results" / "2026-11-29" / "cpu_pretrain_lr_quick"
    rows = jsonl(folder / "pretrain_lr.jsonl")
    assert table(rows, 0.005) in METHODS
    run = {(r["arm"], r["scale"]): r for r in rows}
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    gains = [run[a, 0.5]["val_auc"] - run[a, 1.0]["val_auc"] for a in arms]
    bumpy = [f"`{a}`" for a in arms if run[a, 1.0]["val_auc"] < min(run[a, 0.5]["val_auc"], run[a, 2.0]["val_auc"])]
    said = [f"ahead of the method's own by {min(gains):.2f} to {max(gains):.2f}",
            f"not monotone in the rate for {', '.join(bumpy[:-1])} and {bumpy[-1]}",
            f"moves by at most {max(abs(run[a, 0.5]['knn_acc'] - run[a, 1.0]['knn_acc']) for a in arms):.3f}"]
    assert all(max((run[a, s]["val_auc"], s) for s in (0.5, 1.0, 2.0))[1] == 0.5 for a in arms)
    assert "Half the rate has the highest validation AUC for every arm" in METHODS
    assert missing(METHODS, said) == []


def test_the_spread_between_executions_is_the_logged_comparison():
    """The three executions of the quick study compared by ``benchmarks/compare_executions.py``."""
    log = (RESULTS / "2026-11-27" / "compare_executions.log").read_text()
    pretrained = log.split("\npre-trained", 1)[1]  # the summary's rows of the pre-trained arms
    spread = {protocol: (median, largest) for protocol, median, largest in re.findall(
        r"^\s*(Fine-tuning|Linear probe)\s+\d+\s+([\d.]+)\s+([\d.]+)$", pretrained, re.M)}
    executions = re.search(r"^# python -m benchmarks.compare_executions ((?:\w+ ?)+)", log, re.M).group(1).split()
    said = ["the quick study executed {} times".format({3: "three"}[len(executions)]),
            "smallest has a median of {} (largest {}) under fine-tuning and {} (largest {}) under the linear probe".format(
                *spread["Fine-tuning"], *spread["Linear probe"])]
    assert missing(METHODS, said) == []


def test_the_speed_figures_of_methods_are_their_benchmarks():
    graphs = graph_check("2026-11-27/gpu_h100/graph_check.log")
    bf16 = jsonl(RESULTS / "2026-11-26" / "cpu_bf16_bench.jsonl")
    book = (RESULTS / "2026-11-26" / "cpu_quick_book_bf16.log").read_text()
    minutes, seconds = wall_clock(book)
    said = [f"at 28 px on an H100 the graphed one ran {span([x for _, _, x in graphs.values()], 1)}x faster",
            "SimCLR and BYOL pre-training steps {}x faster at 28 px and {}x at 64 px".format(
                *(span([r["bf16_gain"] for r in bf16 if r["size"] == size]) for size in (28, 64))),
            f"the whole quick book took {minutes} min {rounded(seconds)} s cold in bf16 there"]
    assert set(graphs) == {"tl", "ssl-simclr", "ssl-byol"}
    assert missing(METHODS, said) == []


def test_the_probe_checks_images_are_its_log():
    log = (PROBE_CHECK / "probe_check.log").read_text()
    sizes = re.search(r"train (\d+) \(majority class \d\), val (\d+), test (\d+)", log).groups()
    assert "(seed 0, {} train, {} val and {} test images".format(*sizes) in flat(METHODS)


def test_the_split_sizes_in_methods_are_medmnists():
    from medmnist import INFO

    assert f"scored on {INFO['breastmnist']['n_samples']['val']} validation images" in flat(METHODS)


def test_the_counts_methods_reads_from_the_data_are_the_files(real_data):
    """Duplicates across the official splits and BreastMNIST's test classes, counted in the MedMNIST files."""
    from medlib import data

    def duplicates(flag, split):  # images of ``split`` byte-identical to a training image
        train = set(data.image_hashes(data.load(flag, "train").images))
        return sum(h in train for h in data.image_hashes(data.load(flag, split).images))

    words = {1: "one", 8: "eight"}
    test = data.load("breastmnist", "test").labels.tolist()
    train = data.load("breastmnist", "train").labels.tolist()
    majority = max(set(train), key=train.count)
    malignant = data.load("breastmnist", "test").classes.index("malignant")
    said = [f"({words[duplicates('breastmnist', 'test')]} BreastMNIST test image equals a BreastMNIST training image; "
            f"{words[duplicates('pneumoniamnist', 'val')]} PneumoniaMNIST validation images equal PneumoniaMNIST "
            "training images)",
            f"of which {test.count(majority)} are of the train majority class",
            f"({test.count(majority)} of {len(test)} images, {100 * test.count(majority) / len(test):.1f} %)",
            f"BreastMNIST's {test.count(malignant)} malignant and {len(test) - test.count(malignant)} benign test images"]
    assert missing(METHODS, said) == []


def test_the_option_sweeps_in_methods_are_the_committed_ones():
    from benchmarks.pretrain_options import choice, table

    folder = RESULTS / "2026-11-29" / "cpu_pretrain_options_quick"
    rows = {o: jsonl(folder / o / "pretrain_options.jsonl") for o in ("temperature", "momentum")}
    assert all(table(r, 0.005) in METHODS for r in rows.values())
    auc = {(r["arm"], r["value"]): r["val_auc"] for r in rows["temperature"] + rows["momentum"]}
    assert choice(rows["temperature"], 0.005) == {"ssl-simclr": {"temperature": 0.5}, "bridge-simclr": {"temperature": 0.2}}
    assert choice(rows["momentum"], 0.005) == {"ssl-byol": {"momentum": 0.98}}
    assert auc["ssl-byol", 0.99] < min(auc["ssl-byol", 0.98], auc["ssl-byol", 0.996])
    knn = [r["knn_acc"] for r in rows["momentum"]]
    said = [f"SimCLR keeps its temperature (0.1 scores {auc['ssl-simclr', 0.1] - auc['ssl-simclr', 0.5]:.3f} higher, "
            "within the tolerance)",
            f"the bridge moves to 0.2 ({auc['bridge-simclr', 0.2] - auc['bridge-simclr', 0.5]:.3f} ahead of 0.5)",
            f"BYOL to a momentum of 0.98 ({auc['ssl-byol', 0.98] - auc['ssl-byol', 0.99]:.3f} ahead of 0.99)",
            f"kNN accuracy moves by at most {max(knn) - min(knn):.3f} across the three momenta"]
    assert missing(METHODS, said) == []


def test_the_interval_coverage_in_methods_is_the_committed_simulation():
    """Methods' coverage figures, the pre-training and run spreads and the bootstrap's time are the rows of
    ``python -m benchmarks.interval_coverage`` (benchmarks/results/2026-11-29/cpu_interval_coverage/)."""
    folder = RESULTS / "2026-11-29" / "cpu_interval_coverage"
    rows = {r["scenario"]: r for r in jsonl(folder / "interval_coverage.jsonl")}
    near06, none, near10, one, timed = rows.values()

    def share(r):
        low, high = (rounded(100 * r[k], 1) for k in ("coverage_low", "coverage_high"))
        return f"{rounded(100 * r['coverage'], 1)} %", f"{low}-{high} %"

    said = ["in {} of studies (Wilson interval {})".format(*share(near06)),
            f"the pre-training standard deviation is {near06['pretraining_sd']:.3f} AUC",
            "in {} ({}) without pre-training variance".format(*share(none)),
            "and in {} ({}) when the pre-training standard deviation is {:.3f} AUC".format(*share(near10),
                                                                                       near10["pretraining_sd"]),
            f"{near10['pretraining_sd'] / none['run_sd']:.1f} times one run's standard deviation without it "
            f"({none['run_sd']:.3f}",
            "held the truth in only {} ({}) of studies".format(*share(one)),
            f"(load {timed['load']:.1f}), the replicates of {timed['conditions']} conditions",
            f"{timed['resamples']:,} replicates) took {timed['seconds']:.1f} s"]
    assert (near06["studies"], near06["resamples"], one["pretrainings"], one["adaptations"]) == (200, 400, 1, 3)
    assert missing(METHODS, said) == []
    minutes, seconds = wall_clock((folder / "interval_coverage.log").read_text())
    assert f"per scenario, {minutes} min {rounded(seconds)} s while" in NOTES


def test_vicregs_divergence_and_its_rerun_are_the_committed_rows():
    """VICReg's NaN at 0.06 and its own rate's second pre-training (benchmarks/results/2026-11-29/
    cpu_vicreg_rate_quick/) against the rate sweep's row for the same configuration."""
    folder = RESULTS / "2026-11-29" / "cpu_vicreg_rate_quick"
    again, high = jsonl(folder / "pretrain_lr.jsonl")
    sweep = next(r for r in jsonl(RESULTS / "2026-11-29" / "cpu_pretrain_lr_quick" / "pretrain_lr.jsonl")
                 if r["arm"] == "ssl-vicreg" and r["scale"] == 1)
    epoch = int(re.search(r"became nan in epoch (\d+);", high["diverged"]).group(1))
    assert (again["lr"], again["profile"], high["lr"], high["val_auc"]) == (sweep["lr"], "quick", 0.06, None)
    said = [f"whose loss became NaN in the {['first', 'second', 'third'][epoch - 1]} epoch of the `quick` "
            f"pre-training at {high['lr']:g}",
            f"the same kNN accuracy ({again['knn_acc']:.3f} against {sweep['knn_acc']:.3f}) yet a probe validation "
            f"AUC of {again['val_auc']:.3f} against the sweep's {sweep['val_auc']:.3f}"]
    assert missing(METHODS, said) == []
    minutes, seconds = wall_clock((folder / "pretrain_lr.log").read_text())
    assert (f"scored a probe val AUC of {again['val_auc']:.3f} against the sweep's {sweep['val_auc']:.3f}" in NOTES
            and f"--scales 1 3`, {minutes} min {rounded(seconds)} s while" in NOTES)
