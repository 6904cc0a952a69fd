"""Stored runs computed as jobs through submitit: in-process (debug), as local processes, or on Slurm.

The run store is the only coordination: a stored run is never submitted, and its per-run lock makes two jobs
that reach the same run compute it once. Pre-trainings run first, then the adaptations, then the evaluations of
adapted models (corruption scores, Grad-CAM maps and embeddings); a run whose pre-training or adaptation failed
is not submitted. A failed job never stops the others; it is submitted again (at most
``retries`` times) and resumes from the last checkpoint the run store holds. On Slurm, a preempted or
timed-out job is requeued by submitit (:class:`submitit.helpers.Checkpointable`) and resumes the same way.
Job logs are kept under ``<run store>/jobs/``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import deque
from pathlib import Path

import submitit

from . import scenarios
from .corruptions import robustness
from .experiment import AdaptConfig, pretrained, run_adaptation
from .explain import explanation
from .models import imagenet_weights_problem
from .pretrain import PretrainConfig
from .store import RunStore
from .validation import ParameterError, check_choice, check_number

EXECUTORS = ("local", "slurm", "debug")


def kind(cfg) -> str:
    """The run store kind of a run: ``pretrain``, ``adapt``, or an evaluation's own (``robustness``, ``explain``)."""
    return "adapt" if isinstance(cfg, AdaptConfig) else "pretrain" if isinstance(cfg, PretrainConfig) else cfg.kind


def _computation(cfg):
    """The function that computes and stores ``cfg``'s run (looked up when called)."""
    return {"pretrain": pretrained, "adapt": run_adaptation, "robustness": robustness,
            "explain": explanation}[kind(cfg)]


_NEEDS = {"pretrain": "pre-training", "adapt": "adaptation"}


def _needs(cfg):
    """The run ``cfg`` is computed from: an adaptation's pre-training, an evaluation's adaptation (else None)."""
    return cfg.pretrain if isinstance(cfg, AdaptConfig) else None if isinstance(cfg, PretrainConfig) else cfg.adapt


def describe(cfg) -> str:
    """A short name of a run for progress lines."""
    if isinstance(cfg, AdaptConfig):
        scenario = scenarios.describe(cfg)
        return f"{cfg.arm} {cfg.protocol} -> {cfg.target} seed {cfg.seed}" + (f" ({scenario})" if scenario else "")
    if isinstance(cfg, PretrainConfig):
        return f"pretrain {cfg.arm} on {'+'.join(cfg.sources)} seed {cfg.seed}"
    return f"{cfg.kind} of {describe(cfg.adapt)}"


class Run(submitit.helpers.Checkpointable):
    """One stored run as a job. Called again after a preemption or timeout (submitit's requeue), it resumes from
    the run's checkpoint in the store."""

    def __call__(self, cfg, root: str, threads: int | None = None) -> str:
        if threads:
            import torch
            torch.set_num_threads(threads)
        store = RunStore(root)
        _computation(cfg)(cfg, store, progress=False)
        return str(store.path(kind(cfg), cfg.to_dict()))


def executor(name: str, folder: Path, jobs: int, minutes: int = 120, partition: str | None = None,
             gpus: int = 1) -> submitit.Executor:
    """The submitit executor ``name`` writing its logs to ``folder``; refuses what cannot work (one line)."""
    check_choice("executor", name, EXECUTORS)
    check_number("jobs", jobs, low=1, integer=True)
    check_number("time", minutes, low=1, integer=True)
    check_number("gpus", gpus, low=0, integer=True)
    if name == "debug":
        return submitit.DebugExecutor(folder)
    if name == "local":
        import torch
        ex = submitit.LocalExecutor(folder)  # every local job sees the first GPU (they share it)
        ex.update_parameters(timeout_min=minutes, gpus_per_node=int(torch.cuda.is_available()))
        return ex
    if shutil.which("sbatch") is None:
        raise ParameterError("--executor slurm needs Slurm's sbatch on PATH; use --executor local on one machine")
    ex = submitit.AutoExecutor(folder, cluster="slurm")
    ex.update_parameters(timeout_min=minutes, gpus_per_node=gpus, **({"slurm_partition": partition} if partition
                                                                     else {}))
    return ex


def runnable(configs: list, say=print) -> list:
    """The adaptations (or evaluations) less those of ``imagenet`` models whose weights cannot be had (as the
    chapters skip them)."""
    adapted = [c if isinstance(c, AdaptConfig) else c.adapt for c in configs]
    problems = {c.backbone: imagenet_weights_problem(c.backbone) for c in adapted if c.arm == "imagenet"}
    skipped = [c for c, a in zip(configs, adapted) if a.arm == "imagenet" and problems[a.backbone]]
    if skipped:
        say(f"skipping {len(skipped)} imagenet run(s): {next(p for p in problems.values() if p)}")
    return [c for c in configs if c not in skipped]


def compute(pretrains, adaptations, ex: submitit.Executor, jobs: int, store: RunStore, retries: int = 2,
            threads: int | None = None, poll: float = 1.0, say=print, evaluations=()) -> dict:
    """Compute every run not yet stored, ``jobs`` at a time: pre-trainings, then adaptations, then evaluations.

    Returns counts (``stored``: already there, ``done``, ``failed``) and ``failed_logs`` (stderr paths)."""
    summary = {"stored": 0, "done": 0, "failed": 0, "failed_logs": []}
    lost = set()  # runs that failed or were not submitted: what needs them is not submitted either
    for wave, configs in (("pre-trainings", pretrains), ("adaptations", adaptations), ("evaluations", evaluations)):
        if wave == "evaluations" and not configs:
            continue
        todo = [c for c in configs if store.get(kind(c), c.to_dict(), quiet=True) is None]
        summary["stored"] += len(configs) - len(todo)
        blocked = [c for c in todo if _needs(c) in lost]
        for c in blocked:
            say(f"not submitted: {describe(c)} (its {_NEEDS[kind(_needs(c))]} failed)")
        todo = [c for c in todo if c not in blocked]
        say(f"{wave}: {len(configs) - len(todo) - len(blocked)} stored, {len(todo)} to compute")
        failed = _wave(todo, ex, jobs, store, retries, threads, poll, say)
        summary["done"] += len(todo) - len(failed)
        summary["failed"] += len(failed) + len(blocked)
        summary["failed_logs"] += [log for _, log in failed]
        lost |= {c for c, _ in failed} | set(blocked)
    return summary


def _wave(todo, ex, jobs, store, retries, threads, poll, say) -> list[tuple]:
    """Run ``todo`` with at most ``jobs`` at once; return ``(config, log)`` of the runs that failed for good."""
    queue, running, failed, done, line = deque((c, 1) for c in todo), {}, [], 0, None
    debug = isinstance(ex, submitit.DebugExecutor)
    while queue or running:
        for job in [j for j in running if debug or j.done()]:
            cfg, attempt = running.pop(job)
            error = job.exception()  # a debug job runs here, in this process
            if error is None:
                done += 1
            elif attempt <= retries:
                say(f"retrying {describe(cfg)} (attempt {attempt + 1} of {retries + 1}): "
                    f"{_reason(error)}; log {job.paths.stderr}")
                queue.append((cfg, attempt + 1))
            else:
                failed.append((cfg, str(job.paths.stderr)))
                say(f"failed: {describe(cfg)}: {_reason(error)}; log {job.paths.stderr}")
        while queue and len(running) < jobs:
            cfg, attempt = queue.popleft()
            running[ex.submit(Run(), cfg, str(store.root), threads)] = (cfg, attempt)
        progress = (f"{done} done / {len(running)} running / {len(queue)} queued / {len(failed)} failed"
                    + "".join(f"\n  failed log: {log}" for _, log in failed))
        if progress != line:
            say(progress)
            line = progress
        if running and not debug:
            time.sleep(poll)
    return failed


def _reason(error: BaseException) -> str:
    """The last line of a job's error (submitit's message ends with the job's own exception)."""
    lines = [s for s in str(error).strip().splitlines() if s.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}"


def default_threads(name: str, jobs: int) -> int | None:
    """CPU threads per local job: the machine's cores shared out among the jobs that run at once."""
    return max(1, (os.cpu_count() or 1) // jobs) if name == "local" else None


def _option(value, env: str, default):
    """A flag's value, else the environment variable ``env`` (an integer when ``default`` is), else ``default``."""
    if value is not None or env not in os.environ:
        return default if value is None else value
    text = os.environ[env]
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ParameterError(f"{env}={text!r} is not allowed; give a whole number") from None
    return text


def _counts(pretrains, adaptations, evaluations) -> str:
    return f"{len(pretrains)} pre-trainings, {len(adaptations)} adaptations" + \
        (f", {len(evaluations)} evaluations" if evaluations else "")


def compute_command(P, args) -> int:
    """``python -m medlib compute``: every option checked before anything is submitted; exit 1 if a run failed."""
    from .plan import CHAPTERS, chapter_runs

    chapters = args.only or list(CHAPTERS)
    unknown = [c for c in chapters if c not in CHAPTERS]
    if unknown:
        raise ParameterError(f"unknown chapter {', '.join(map(repr, unknown))}; the chapters are: "
                             f"{', '.join(CHAPTERS)}")
    check_number("retries", args.retries, low=0, integer=True)
    minutes = _option(args.time, "MEDLIB_SLURM_TIME", 120)
    gpus = _option(args.gpus, "MEDLIB_SLURM_GPUS", 1)
    partition = _option(args.partition, "MEDLIB_SLURM_PARTITION", None)
    if args.dry_run:
        for name in chapters:
            print(f"{name}: {_counts(*chapter_runs(P, [name]))}")
        print(f"distinct runs: {_counts(*chapter_runs(P, chapters))}")
        return 0
    store = RunStore()
    ex = executor(args.executor, store.root / "jobs" / "%j", args.jobs, minutes, partition, gpus)
    pretrains, adaptations, evaluations = chapter_runs(P, chapters)
    summary = compute(pretrains, runnable(adaptations), ex, args.jobs, store, args.retries,
                      default_threads(args.executor, args.jobs), evaluations=runnable(evaluations))
    print(f"{summary['done']} computed, {summary['stored']} already stored, {summary['failed']} failed "
          f"(run store {store.root})")
    return 1 if summary["failed"] else 0
