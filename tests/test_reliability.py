"""Reliability (issue 6): bad input is refused before work starts, data faults are named, interruptions and
damaged files lose nothing, a non-finite loss stops cleanly, concurrent runs compute once, and runs are
deterministic. Every row of RELIABILITY.md names the test here that exercises it.

Deterministic CPU mode: the in-process runs use one torch thread, and the subprocesses get OMP_NUM_THREADS=1, so
that an interrupted-then-resumed pre-training can be compared bit for bit with an uninterrupted one (one thread
also avoids the large slowdown of two OpenMP threads on two shared cores).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import medlib.pretrain as pretrain_module
from medlib import data
from medlib.cli import main
from medlib.experiment import AdaptConfig, encoder_for, load_model, run_adaptation, run_grid, summarize
from medlib.models import imagenet_weights_problem
from medlib.pretrain import NonFiniteLoss, PretrainConfig, pretrain
from medlib.profiles import parameters
from medlib.store import RunStore, StoreError, load_torch, read_result, save_torch
from medlib.study import adapt_configs
from medlib.validation import ParameterError

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data" / "medmnist"


pytestmark = pytest.mark.usefixtures("one_thread")


def data_root() -> Path:
    root = Path(os.environ.get("MEDLIB_DATA") or SHARED_DATA).resolve()
    if not (root / "breastmnist.npz").exists():
        pytest.skip(f"real MedMNIST files not found in {root}")
    return root


def cli(argv, capsys) -> tuple[int, str]:
    """``python -m medlib argv`` in this process: (exit code, stderr)."""
    try:
        code = main(argv)
    except SystemExit as e:  # argparse errors exit
        code = e.code
    return code, capsys.readouterr().err


PROGRESS = re.compile(r"^[^|]*: *\d+%\|.*\|.*\]$")  # a tqdm bar


def messages(err: str) -> list[str]:
    """The lines of stderr as a terminal shows them, progress bars left out."""
    shown = (line.split("\r")[-1] for line in err.split("\n"))
    return [line for line in shown if line.strip() and not PROGRESS.match(line)]


def one_line(err: str) -> str:
    """The one error line of stderr (progress bars aside): no traceback, nothing else."""
    lines = messages(err)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


# --- 1. validation before work ------------------------------------------------------------------------------

KNOB_CASES = {
    "unknown dataset flag": (dict(target="mnist"), "target='mnist' is not allowed; choose one of: pathmnist,"),
    "unsupported size": (dict(size=32), "size=32 is not allowed; choose one of: 28, 64, 128, 224"),
    "unknown arm": (dict(arms=["tl", "moco"]), "arms=['tl', 'moco'] contains 'moco'; allowed: scratch, imagenet"),
    "unknown method": (dict(protocols=["knn"]), "protocols=['knn'] contains 'knn'; allowed: linear, finetune"),
    "fraction 0": (dict(label_fractions=[0.1, 0]), "label_fractions=0 is not allowed; expected a number with "
                                                   "0 < label_fractions <= 1"),
    "fraction > 1": (dict(label_fractions=[1.5]), "label_fractions=1.5 is not allowed"),
    "imbalance ratio < 1": (dict(imbalance_ratios=[0.5]), "imbalance_ratios=0.5 is not allowed; expected a number "
                                                          "with 1 <= imbalance_ratios"),
    "empty seed list": (dict(seeds=[]), "seeds=[] is empty; give at least one value"),
    "unknown profile": (dict(profile="huge"), "profile='huge' is not allowed; choose one of: smoke, quick, full"),
    "unknown knob": (dict(label_fractoins=[0.1]), "unknown parameter 'label_fractoins'; the knobs are: profile,"),
    "repeated seed": (dict(seeds=[0, 1, 0]), "seeds=[0, 1, 0] lists 0 more than once; give each value once"),
    "source listed twice": (dict(sources=["pneumoniamnist", "pneumoniamnist"]),
                            "sources=['pneumoniamnist', 'pneumoniamnist'] lists 'pneumoniamnist' more than once"),
    "size given as a float": (dict(size=64.0), "size=64.0 is not allowed; choose one of: 28, 64, 128, 224"),
    "infinite imbalance ratio": (dict(imbalance_ratios=[float("inf")]), "imbalance_ratios=inf is not allowed; "
                                 "expected a finite number with 1 <= imbalance_ratios"),
}


@pytest.mark.parametrize("case", list(KNOB_CASES))
def test_bad_notebook_parameter_is_one_clear_line(case, private_store):
    given, message = KNOB_CASES[case]
    with pytest.raises(ParameterError) as e:
        parameters(**given)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
    with pytest.raises(ParameterError, match=re.escape(message)):  # a notebook's globals() (papermill -p)
        parameters(namespace={"__name__": "__main__", "np": os, **given})
    assert not private_store.exists()


BASE = ["finetune", "--arm", "scratch", "--target", "breastmnist"]
CLI_CASES = {
    "unknown dataset flag": (["pretrain", "--arm", "tl", "--target", "mnist"], "target='mnist' is not allowed"),
    "unsupported size": (BASE + ["--size", "32"], "size=32 is not allowed; choose one of: 28, 64, 128, 224"),
    "non-integer size": (BASE + ["--size", "abc"], "argument --size: invalid int value: 'abc'"),
    "unknown arm (pretrain)": (["pretrain", "--arm", "moco", "--target", "breastmnist"],
                               "arm='moco' is not allowed; choose one of: tl, ssl-simclr, ssl-byol"),
    "unknown arm (finetune)": (["finetune", "--arm", "moco", "--target", "breastmnist"],
                               "arms=['moco'] contains 'moco'"),
    "unknown method": (BASE + ["--protocol", "knn"], "protocols=['knn'] contains 'knn'; allowed: linear, finetune"),
    "fraction 0": (BASE + ["--label-fraction", "0"], "label_fraction=0.0 is not allowed; expected a number with "
                                                     "0 < label_fraction <= 1"),
    "fraction > 1": (BASE + ["--label-fraction", "1.5"], "label_fraction=1.5 is not allowed"),
    "label noise that says nothing": (BASE + ["--label-noise", "0.5"], "label_noise=0.5 is not allowed; expected a "
                                      "number with 0 <= label_noise < 0.5 ((k - 1) / k for k = 2 classes"),
    "imbalance ratio < 1": (BASE + ["--imbalance-ratio", "0.5"], "imbalance_ratio=0.5 is not allowed; expected "
                                                                 "a number with 1 <= imbalance_ratio"),
    "empty seed list": (BASE + ["--seeds"], "argument --seeds: expected at least one argument"),
    "negative seed": (BASE + ["--seeds", "0", "-1"], "seeds=-1 is not allowed"),
    "zero epochs": (BASE + ["--epochs", "0"], "is not allowed; expected an integer with 1 <= "),
    "unknown profile": (BASE + ["--profile", "huge"], "profile='huge' is not allowed"),
    "unknown profile (book)": (["book", "--profile", "huge"], "profile='huge' is not allowed"),
    "unknown option": (BASE + ["--label-fractoin", "0.5"], "unrecognized arguments: --label-fractoin 0.5"),
    "unknown command": (["pretrian"], "argument command: invalid choice: 'pretrian'"),
    "repeated seed": (BASE + ["--seeds", "0", "0"], "seeds=[0, 0] lists 0 more than once; give each value once"),
    "target in its own pool": (["pretrain", "--arm", "tl", "--target", "breastmnist", "--sources", "breastmnist",
                                "pneumoniamnist"], "sources=['breastmnist', 'pneumoniamnist'] contains the target "
                                                   "'breastmnist'; a source pool must leave out the target"),
    "target in its own pool (finetune)": (["finetune", "--arm", "ssl-byol", "--target", "retinamnist", "--sources",
                                           "retinamnist"], "contains the target 'retinamnist'"),
    "a target's patients in its pool": (["pretrain", "--arm", "tl", "--target", "organcmnist", "--sources",
                                         "pathmnist", "organsmnist"],
                                        "sources=['pathmnist', 'organsmnist'] contains 'organsmnist' (cut from the "
                                        "patients of the target 'organcmnist'); a source pool must leave out"),
    "source listed twice": (["pretrain", "--arm", "tl", "--target", "breastmnist", "--sources", "pneumoniamnist",
                             "pneumoniamnist"], "lists 'pneumoniamnist' more than once; give each value once"),
    "multi-label source": (["pretrain", "--arm", "tl", "--target", "breastmnist", "--sources", "chestmnist"],
                           "chestmnist is multi-label, binary-class; a source pool needs single-label datasets"),
    "minority not a class": (BASE + ["--imbalance-ratio", "2", "--minority", "7"],
                             "error: minority=7 is not allowed; choose one of the classes [0, 1]"),
    "minority not a class (no imbalance)": (BASE + ["--minority", "7"],
                                            "error: minority=7 is not allowed; choose one of the classes [0, 1]"),
    "scenario on a multi-label target": (["finetune", "--arm", "scratch", "--target", "chestmnist",
                                          "--label-fraction", "0.5"], "label_fraction, max_train_images need a "
                                                                      "single-label target"),
    "label fraction and per class": (BASE + ["--label-fraction", "0.5", "--per-class", "3"],
                                     "give label_fraction or per_class, not both"),
    "epochs for the linear probe": (BASE + ["--protocol", "linear", "--epochs", "5"],
                                    "epochs=5 is not allowed with protocol='linear': the linear probe fits to "
                                    "convergence"),
    "unknown chapter": (["chapter", "04_scarcit"], "unknown chapter '04_scarcit'; choose from: 01_data, "),
    "unknown chapter parameter": (["chapter", "04_scarcity", "-p", "targt", "breastmnist"],
                                  "04_scarcity has no parameter targt; allowed: profile, target, "),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_bad_cli_option_is_one_line_exit_2_and_writes_nothing(case, capsys, private_store):
    argv, message = CLI_CASES[case]
    code, err = cli(argv, capsys)
    assert code == 2 and message in one_line(err)
    assert not private_store.exists()


def test_a_target_in_its_own_notebook_source_pool_is_refused_before_any_work(private_store):
    P = parameters(sources=["breastmnist", "pneumoniamnist"])
    with pytest.raises(ParameterError, match=r"sources=\['breastmnist', 'pneumoniamnist'\] contains the target "
                                             r"'breastmnist'; a source pool must leave out the target"):
        adapt_configs(P, "breastmnist")
    assert not private_store.exists()


def test_imagenet_arm_offline_is_a_skipped_row_with_its_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDLIB_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # no cached weights
    imagenet_weights_problem.cache_clear()
    try:
        code = main(["finetune", "--arm", "imagenet", "--target", "breastmnist", "--seeds", "0", "1"])
        grid = run_grid(adapt_configs(parameters(arms=["imagenet"]), "breastmnist"), progress=False)  # a notebook's
        assert grid["skipped"].notna().all() and summarize(grid, ["arm", "protocol"]).empty
    finally:
        imagenet_weights_problem.cache_clear()
    out, err = capsys.readouterr()
    reason = ("torchvision's resnet18 ImageNet weights are not in torch's hub cache and MEDLIB_OFFLINE=1 forbids a "
              "download")  # no machine path: the reason is printed in the book's chapters too
    assert code == 0 and "Traceback" not in err
    assert out.splitlines() == [f"skipped: imagenet finetune seed {s}: {reason}" for s in (0, 1)]


def test_runs_lists_the_others_and_names_a_damaged_run_in_one_line(capsys, private_store):
    store = RunStore(private_store)
    configs = [dict(arm="scratch", protocol="linear", target="breastmnist", seed=s) for s in (0, 1, 2)]
    for c in configs:
        store.cached("adapt", c, lambda run_dir: {"test": {"auc": 0.61}})
    damaged = store.path("adapt", configs[1])
    (damaged / "result.json").write_text('{"test": {"auc": 0.9')  # damaged
    edited = store.path("adapt", configs[2]) / "result.json"
    edited.write_bytes(edited.read_bytes().replace(b"0.61", b"0.99"))  # an AUC edited by hand
    assert main(["runs"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == f"1 runs in {private_store} (2 damaged, left out)"
    assert "scratch linear -> breastmnist seed 0: AUC 0.610" in out and "0.99" not in out
    assert sorted(err.splitlines()) == sorted(
        f"damaged: {d}: result.json fails its checksum (edited or damaged); not counted, computed again when asked "
        "for" for d in (damaged, edited.parent))


@pytest.mark.parametrize("command", [["runs"], ["pretrain", "--arm", "tl", "--target", "breastmnist"]])
@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_a_run_store_that_cannot_hold_runs_is_one_line(where, command, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    root = blocker if where == "a file" else blocker / "runs"
    monkeypatch.setenv("MEDLIB_RUNS", str(root))
    code, err = cli(command, capsys)
    if command == ["runs"] and where == "under a file":
        assert code == 0  # nothing stored there: nothing to list
        return
    assert code == 1 and f"the run store {root} is a file" in one_line(err) if where == "a file" else \
        code == 1 and f"the run store cannot write to {root / 'pretrain'}" in one_line(err)


def test_a_bad_value_in_a_chapter_is_one_line_there_and_in_the_notebook(tmp_path, capsys, private_store):
    """``python -m medlib chapter`` with a value the chapter refuses: exit 2 and one line, and the executed notebook
    (named in it) shows the refusal as one line too, which is what plain papermill prints (no cell traceback)."""
    code, err = cli(["chapter", "04_scarcity", "-p", "target", "mnist", "--out", str(tmp_path / "mine")], capsys)
    line = one_line(err)
    assert code == 2 and "chapter 04_scarcity failed: ParameterError: target='mnist' is not allowed" in line
    assert not (tmp_path / "mine").exists() and not private_store.exists()
    executed = Path(re.search(r"executed notebook: (\S+\.ipynb)", line).group(1))
    errors = [o for c in json.loads(executed.read_text())["cells"] for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    assert [o["traceback"] for o in errors] == [["ParameterError: target='mnist' is not allowed; choose one of: "
                                                 + ", ".join(data.FLAGS)]]
    shutil.rmtree(executed.parent)


@pytest.mark.parametrize("argv,message", [
    (["pretrain", "--arm", "tl", "--target", "mnist"], "target='mnist' is not allowed"),
    (BASE + ["--seeds"], "argument --seeds: expected at least one argument"),
])
def test_python_m_medlib_refuses_in_one_line(argv, message, tmp_path):
    env = os.environ | {"MEDLIB_RUNS": str(tmp_path / "runs"), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "medlib", *argv], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2 and message in one_line(done.stderr) and done.stdout == ""
    assert not (tmp_path / "runs").exists()


# --- 2. data faults --------------------------------------------------------------------------------------

def assert_names_the_file(text: str, flag: str, size: int, root: Path):
    url, md5 = data.file_info(flag, size)
    assert data.file_name(flag, size) in text and url in text and md5 in text and str(root) in text, text


def test_missing_file_offline_is_named_with_url_md5_root(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDLIB_OFFLINE", "1")
    with pytest.raises(data.DataError) as e:
        data.ensure_file("breastmnist", 64, tmp_path)
    assert "MEDLIB_OFFLINE=1 forbids a download" in str(e.value)
    assert_names_the_file(str(e.value), "breastmnist", 64, tmp_path)
    monkeypatch.setenv("MEDLIB_DATA", str(tmp_path))
    code, err = cli(["pretrain", "--arm", "tl", "--target", "retinamnist", "--sources", "breastmnist"], capsys)
    assert code == 1
    assert_names_the_file(one_line(err), "breastmnist", 28, tmp_path)
    assert not list((tmp_path / "runs").glob("*/*"))  # the refusal left no run folder behind


@pytest.mark.parametrize("damage", ["altered", "truncated"])
def test_altered_or_truncated_npz_is_refused(damage, tmp_path, monkeypatch, capsys):
    raw = bytearray((data_root() / "breastmnist.npz").read_bytes())
    if damage == "altered":
        raw[len(raw) // 2] ^= 0xFF  # same size, one byte flipped
    else:
        raw = raw[: len(raw) // 2]
    (tmp_path / "breastmnist.npz").write_bytes(bytes(raw))
    monkeypatch.setenv("MEDLIB_DATA", str(tmp_path))
    monkeypatch.setenv("MEDLIB_OFFLINE", "1")
    with pytest.raises(data.DataError, match=r"is not the official file \(its MD5 differs; truncated or altered\?\)"):
        data.load("breastmnist", "train")
    code, err = cli(["finetune", "--arm", "scratch", "--target", "breastmnist", "--seeds", "0"], capsys)
    assert code == 1
    assert_names_the_file(one_line(err), "breastmnist", 28, tmp_path)


def test_unwritable_root_when_a_download_is_needed(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLIB_OFFLINE", "0")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data root's parent should be")
    root = blocker / "medmnist"  # cannot be created (tests run as root, so permission bits would not stop it)
    with pytest.raises(data.DataError, match="is missing and could not be downloaded") as e:
        data.ensure_file("breastmnist", 28, root)
    assert_names_the_file(str(e.value), "breastmnist", 28, root)
    assert "\n" not in str(e.value)


def test_failed_download_is_named_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLIB_OFFLINE", "0")

    def no_network(url, timeout):
        raise urllib.error.URLError("[Errno -3] name resolution\nmore")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(data.DataError, match=r"could not be downloaded \(<urlopen error \[Errno -3\]") as e:
        data.ensure_file("breastmnist", 28, tmp_path)
    assert_names_the_file(str(e.value), "breastmnist", 28, tmp_path)
    assert "\n" not in str(e.value) and e.value.__cause__ is None


# --- 3. interruption, partial writes, damaged files -----------------------------------------------------------

PRETRAIN = ["pretrain", "--arm", "ssl-simclr", "--target", "retinamnist", "--sources", "breastmnist",
            "--profile", "smoke", "--pretrain-epochs", "3", "--pretrain-batch-size", "32",
            "--pretrain-max-images", "128"]  # 4 steps per epoch, 28 px

# Runs PRETRAIN through the CLI, and pauses in the 2nd step of epoch 2 (after its first update, so the weights
# in memory are past the epoch-1 checkpoint) until a signal arrives: a kill mid-epoch.
DRIVER = """
import json, os, signal, sys, time
import medlib.pretrain as P
from medlib.cli import main
save, loss, seen = P.save_torch, P.SimCLR.loss, {"checkpoints": 0, "steps": 0}
def save_and_count(obj, path):
    save(obj, path)
    seen["checkpoints"] += path.name == "checkpoint.pt"
def loss_then_pause(self, *args):
    if seen["checkpoints"] == 1:
        seen["steps"] += 1
        if seen["steps"] == 2:
            open(os.environ["PAUSED"], "w").close()
            time.sleep(600)
    return loss(self, *args)
P.save_torch, P.SimCLR.loss = save_and_count, loss_then_pause
signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C's behaviour, even if started in the background
sys.exit(main(json.loads(sys.argv[1])))
"""


def run_dir_of(store: Path) -> Path:
    (run_dir,) = (store / "pretrain").iterdir()
    return run_dir


def encoder_of(store: Path) -> dict:
    return load_torch(run_dir_of(store) / "encoder.pt")


def assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """Three runs of PRETRAIN killed mid-epoch 2 (SIGINT, SIGTERM, SIGKILL), and an uninterrupted reference run."""
    root, base = data_root(), tmp_path_factory.mktemp("interrupt")
    env = os.environ | {"MEDLIB_DATA": str(root), "MEDLIB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                        "PYTHONPATH": str(ROOT)}
    procs = {}
    for sig in ("SIGINT", "SIGTERM", "SIGKILL"):
        e = env | {"MEDLIB_RUNS": str(base / sig), "PAUSED": str(base / f"{sig}.paused")}
        procs[sig] = subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(PRETRAIN)], env=e,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with pytest.MonkeyPatch.context() as mp_:  # the reference, in this process while the others start
        for name, value in (("MEDLIB_DATA", str(root)), ("MEDLIB_OFFLINE", "1"), ("MEDLIB_RUNS", str(base / "ref"))):
            mp_.setenv(name, value)
        assert main(PRETRAIN) == 0
    out = {"reference": encoder_of(base / "ref"), "base": base}
    deadline = time.time() + 300
    for sig, proc in procs.items():
        while not (base / f"{sig}.paused").exists():
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"the {sig} run never paused: {proc.communicate()[1][-2000:]}")
            time.sleep(0.05)
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=120)
        out[sig] = {"code": proc.returncode, "stderr": err, "store": base / sig}
    shutil.copytree(base / "SIGKILL", base / "damaged")  # for the damaged-checkpoint test
    return out


@pytest.mark.parametrize("sig,code", [("SIGINT", 130), ("SIGTERM", 143), ("SIGKILL", -signal.SIGKILL)])
def test_killed_mid_epoch_then_rerun_resumes_to_identical_weights(sig, code, interrupted, monkeypatch, capsys):
    run = interrupted[sig]
    assert run["code"] == code
    if sig != "SIGKILL":
        word = "interrupted" if sig == "SIGINT" else "terminated"
        assert messages(run["stderr"]) == [
            f"{word}: finished runs and the last complete checkpoint are kept in the run store"]
    run_dir = run_dir_of(run["store"])
    names = {p.name for p in run_dir.iterdir()} - {".lock"}
    assert names == {"checkpoint.pt", "config.json"}, names  # no result, no encoder, no temporary file
    checkpoint = load_torch(run_dir / "checkpoint.pt")
    assert checkpoint["epoch"] == 1
    monkeypatch.setenv("MEDLIB_DATA", str(data_root()))
    monkeypatch.setenv("MEDLIB_OFFLINE", "1")
    monkeypatch.setenv("MEDLIB_RUNS", str(run["store"]))
    assert main(PRETRAIN) == 0  # the same command again
    result = read_result(run_dir / "result.json")
    assert result["history"][0] == checkpoint["history"][0]  # epoch 1 was resumed, not recomputed
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3]
    assert not (run_dir / "checkpoint.pt").exists()
    assert_same_weights(encoder_of(run["store"]), interrupted["reference"])


def test_damaged_checkpoint_is_detected_recomputed_never_loaded(interrupted, monkeypatch, capsys):
    store = interrupted["base"] / "damaged"
    path = run_dir_of(store) / "checkpoint.pt"
    old = load_torch(path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    loads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    monkeypatch.setenv("MEDLIB_DATA", str(data_root()))
    monkeypatch.setenv("MEDLIB_OFFLINE", "1")
    monkeypatch.setenv("MEDLIB_RUNS", str(store))
    assert main(PRETRAIN) == 0
    assert f"checkpoint {path} is damaged ({path} fails its checksum); starting this pre-training again" in \
        capsys.readouterr().out
    assert loads == []  # the damaged file was never unpickled
    monkeypatch.undo()
    result = read_result(path.parent / "result.json")
    assert result["history"][0] != old["history"][0]  # epoch 1 was computed again
    assert_same_weights(encoder_of(store), interrupted["reference"])


@pytest.mark.parametrize("damage", ["flipped header", "truncated", "empty", "garbage"])
def test_resume_refuses_every_kind_of_damaged_checkpoint(damage, tmp_path, capsys):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    path = tmp_path / "checkpoint.pt"
    save_torch({"epoch": 2, "method": model.state_dict(), "optimizer": optimizer.state_dict(), "history": [1, 2]},
               path)
    raw = path.read_bytes()
    raw = {"flipped header": bytes([raw[0] ^ 1]) + raw[1:], "truncated": raw[:-20], "empty": b"",
           "garbage": b"not a checkpoint"}[damage]
    path.write_bytes(raw)
    assert pretrain_module._resume(path, model, optimizer) == (0, [])
    assert "is damaged" in capsys.readouterr().out and not path.exists()


def test_partial_write_never_replaces_a_good_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_torch({"epoch": 1}, path)

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_torch({"epoch": 2}, path)
    monkeypatch.undo()
    assert load_torch(path) == {"epoch": 1} and sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_run_without_a_readable_result_does_not_count(tmp_path):
    store, config, calls = RunStore(tmp_path), {"a": 1}, []
    run_dir = store.path("adapt", config)
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text("{}")
    (run_dir / ".result.json.x1y2.tmp").write_text('{"half": ')  # left by a kill during a write
    assert store.get("adapt", config) is None and store.runs() == []
    (run_dir / "result.json").write_text('{"half": ')  # not valid JSON
    assert store.get("adapt", config) is None
    assert store.cached("adapt", config, lambda d: calls.append(d) or {"value": 1}) == {"value": 1}
    assert len(calls) == 1 and store.runs()[0]["result"] == {"value": 1}


def test_damaged_encoder_of_a_finished_pretraining_is_recomputed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDLIB_DATA", str(data_root()))
    monkeypatch.setenv("MEDLIB_OFFLINE", "1")
    store = RunStore(tmp_path / "runs")
    cfg = PretrainConfig("ssl-simclr", ("breastmnist",), ("retinamnist",), epochs=1, batch_size=32, max_images=64)
    store.cached("pretrain", cfg.to_dict(), lambda d: pretrain(cfg, d, progress=False))
    path = store.path("pretrain", cfg.to_dict()) / "encoder.pt"
    good = load_torch(path)
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0xFF
    path.write_bytes(bytes(raw))
    adapt_cfg = AdaptConfig("ssl-simclr", "retinamnist", "linear", pretrain=cfg)
    encoder = encoder_for(adapt_cfg, store, progress=False)  # loads the encoder; must not get the damaged one
    assert "encoder.pt fails its checksum; this run is computed again" in capsys.readouterr().out
    assert_same_weights(encoder.state_dict(), good)
    assert store.get("pretrain", cfg.to_dict())["history"][0]["epoch"] == 1


# --- 4. numerical faults ------------------------------------------------------------------------------------

def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(monkeypatch, capsys, private_store):
    monkeypatch.setenv("MEDLIB_DATA", str(data_root()))
    monkeypatch.setenv("MEDLIB_OFFLINE", "1")
    real_loss, calls = pretrain_module.SimCLR.loss, []

    def nan_from_epoch_2(self, *args):
        calls.append(1)
        loss = real_loss(self, *args)
        return loss * float("nan") if len(calls) > 4 else loss  # 4 steps per epoch

    monkeypatch.setattr(pretrain_module.SimCLR, "loss", nan_from_epoch_2)
    code, err = cli(PRETRAIN, capsys)
    run_dir = run_dir_of(private_store)
    assert code == 1
    assert one_line(err) == (f"error: ssl-simclr pre-training loss became nan in epoch 2; the last good checkpoint "
                             f"(epoch 1, {run_dir / 'checkpoint.pt'}) is kept; lower lr=0.06?")
    checkpoint = load_torch(run_dir / "checkpoint.pt")
    assert checkpoint["epoch"] == 1 and all(torch.isfinite(v).all() for v in checkpoint["method"].values()
                                            if v.is_floating_point())
    assert not (run_dir / "result.json").exists() and not (run_dir / "encoder.pt").exists()


def test_huge_learning_rate_stops_in_epoch_1_without_a_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLIB_DATA", str(data_root()))
    monkeypatch.setenv("MEDLIB_OFFLINE", "1")
    cfg = PretrainConfig("ssl-simclr", ("breastmnist",), ("retinamnist",), epochs=2, batch_size=32, max_images=64,
                         lr=1e30)
    with pytest.raises(NonFiniteLoss, match=r"loss became (nan|inf) in epoch 1; no checkpoint had been written yet; "
                                            r"lower lr=1e\+30\?"):
        pretrain(cfg, tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


# --- 5. concurrency -----------------------------------------------------------------------------------------

def _cached_in_child(root, config, marker, start, results):
    store = RunStore(root)

    def compute(run_dir):
        with open(marker, "a") as f:
            f.write(f"{os.getpid()} {json.dumps(config)}\n")
        time.sleep(1.0)  # long enough for the other process to arrive while this one holds the lock
        save_torch({"w": torch.arange(3)}, run_dir / "weights.pt")
        return {"pid": os.getpid()}

    start.wait()
    results.put(store.cached("pretrain", config, compute))


def test_two_processes_compute_the_same_config_once(tmp_path):
    ctx = mp.get_context("fork")
    start, results, marker = ctx.Event(), ctx.Queue(), tmp_path / "computations.txt"
    configs = [{"same": 1}, {"same": 1}, {"other": 2}]  # two chapters asking for one run, one for another
    procs = [ctx.Process(target=_cached_in_child, args=(tmp_path / "runs", c, marker, start, results))
             for c in configs]
    for p in procs:
        p.start()
    start.set()
    got = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    lines = marker.read_text().splitlines()
    assert sorted(line.split(" ", 1)[1] for line in lines) == ['{"other": 2}', '{"same": 1}']
    assert len({g["pid"] for g in got}) == 2  # the two "same" callers got one result
    store = RunStore(tmp_path / "runs")
    assert sorted(json.dumps(r["config"]) for r in store.runs()) == ['{"other": 2}', '{"same": 1}']
    for row in store.runs():
        run_dir = tmp_path / "runs" / "pretrain" / row["key"]
        assert torch.equal(load_torch(run_dir / "weights.pt")["w"], torch.arange(3))
        assert not list(run_dir.glob("*.tmp"))


# --- 6. determinism -----------------------------------------------------------------------------------------

def test_same_config_and_seed_give_identical_metrics_and_other_seeds_differ(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLIB_DATA", str(data_root()))
    monkeypatch.setenv("MEDLIB_OFFLINE", "1")
    cfg = AdaptConfig("scratch", "breastmnist", "finetune", seed=0, epochs=1, max_train_images=64)
    a = run_adaptation(cfg, RunStore(tmp_path / "a"), progress=False)
    b = run_adaptation(cfg, RunStore(tmp_path / "b"), progress=False)
    other = run_adaptation(replace(cfg, seed=1), RunStore(tmp_path / "a"), progress=False)
    assert a["test"] == b["test"] and a["history"][0]["val_auc"] == b["history"][0]["val_auc"]
    dirs = [RunStore(tmp_path / s).path("adapt", cfg.to_dict()) for s in ("a", "b")]
    csvs = [sorted(d.glob("*.csv")) for d in dirs]
    assert csvs[0] and [p.name for p in csvs[0]] == [p.name for p in csvs[1]]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(*csvs))  # identical test predictions
    assert other["test"] != a["test"]


def test_an_adapted_model_missing_from_the_store_is_one_line_not_a_traceback(real_data, one_thread, private_store,
                                                                            capsys):
    """A stored adaptation without its model.pt (a run imported from an archive carries no weights), asked for
    its model by a Grad-CAM or robustness evaluation: one line naming the run and what to do."""
    cfg = replace(adapt_configs(parameters(profile="smoke", max_train_images=32), "breastmnist", arms=["scratch"],
                                protocols=["linear"])[0], keep_model=True)
    run_adaptation(cfg, progress=False)
    (RunStore().path("adapt", cfg.to_dict()) / "model.pt").unlink()
    with pytest.raises(StoreError, match=r"the run's result is stored but not its model \(model.pt\)"):
        load_model(cfg)
