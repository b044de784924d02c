"""Command line: `ocrd run`, `process`, `jobs`, `status`, `requeue`, `token`, `check`, `models`; the only place that prints or calls sys.exit.

Heavy modules are imported inside the commands so that `ocrd --help` is fast
and no decoder is loaded in the main process before its limits are set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocrd import __version__
from ocrd.errors import ExitCode, OcrdError

if TYPE_CHECKING:
    from ocrd.config.schema import Config


def _load(args: argparse.Namespace) -> Config:
    from ocrd.config.load import load_config, resolve_config_path

    return load_config(resolve_config_path(args.config, os.environ))


class _Progress:
    """A one-line progress display on a terminal; silent otherwise."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total = total
        self.done = 0
        self.stream = stream
        self.enabled = stream.isatty()

    def step(self, label: str) -> None:
        self.done += 1
        if self.enabled:
            width = 30
            filled = int(width * self.done / max(1, self.total))
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {label[:40]:<40}")
            self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # gone or unreadable: the worker reports why


def cmd_process(args: argparse.Namespace) -> int:
    from ocrd.config.schema import pool_shape
    from ocrd.cpus import available_cpus
    from ocrd.intake.decode import decoder_env
    from ocrd.inbox.watch import escaped_name, text_rel_path
    from ocrd.jobs.ids import new_job_id
    from ocrd.outputs.writers import choose_stem
    from ocrd.jobs.records import Job
    from ocrd.service.workers import WorkerPool, classify_failure

    cfg = _load(args)
    if args.outbox:
        cfg = cfg.with_outbox(Path(args.outbox))
    from ocrd.inbox.files import walk_inputs

    inputs = list(walk_inputs(args.paths))
    if not inputs:
        print("ocrd process: no input files found", file=sys.stderr)
        return ExitCode.SOME_FAILED

    jobs: list[Job] = []
    reserved: dict[Path, set[str]] = {}
    for file, root, raw_rel in inputs:
        rel = text_rel_path(raw_rel)  # the JSON and the output names hold text; the file is read by its own name
        out_dir = cfg.outbox / Path(rel).parent
        taken = reserved.setdefault(out_dir, set())
        stem = choose_stem(
            out_dir, Path(rel).stem, 1, cfg.outputs, is_ours=lambda p, rel=rel: _same_source(p, rel), reserved=taken
        )
        taken.add(stem)
        jobs.append(Job(job_id=new_job_id(), path=file, rel_path=rel, out_dir=out_dir, stem=stem,
                        alone=len(inputs) == 1))  # fmt: skip

    workers, threads = pool_shape(available_cpus(), cfg.workers.count, cfg.workers.intra_op_threads)
    workers = min(workers, len(jobs))
    # Spawned workers inherit the environment: the decoder limits are in place before they import cv2.
    os.environ.update(decoder_env(cfg.intake))
    models = _prepare_models(cfg)
    progress = _Progress(len(jobs))
    failures: Counter[str] = Counter()
    ok = 0
    t0 = time.perf_counter()
    with WorkerPool(cfg, workers=workers, intra_op_threads=threads, model_set=models.model_set,
                    verified=models.verified) as pool:  # fmt: skip
        # Largest files first: the last jobs are then short ones, so no worker is left alone with a long
        # page at the end while the others idle (results and the summary do not depend on the order).
        by_size = sorted(jobs, key=lambda job: _size_or_zero(job.path), reverse=True)
        futures = [(job, pool.submit(job)) for job in by_size]
        for job, future in futures:
            try:
                outcome = future.result()
            except Exception as exc:  # noqa: BLE001 - every failure is classified and reported
                failure = classify_failure(exc, pool.timeout_s)
                failures[str(failure.reason)] += 1
                progress.step(job.rel_path)
                if progress.enabled:
                    sys.stderr.write("\n")
                print(f"FAILED {escaped_name(str(job.path))}: {failure.reason}: {failure.message}", file=sys.stderr)
                continue
            ok += 1
            progress.step(job.rel_path)
            if args.verbose:
                peak = f", peak {outcome.peak_rss_mb:.0f} MiB" if outcome.peak_rss_mb is not None else ""
                print(f"ok {escaped_name(str(job.path))}: {outcome.pages} page(s), {outcome.lines} line(s), "
                      f"{outcome.total_ms:.0f} ms{peak}")  # fmt: skip
            if outcome.reason:  # done, but an output was left out on purpose (an encrypted PDF's PDF): say so always
                print(f"note {escaped_name(str(job.path))}: {outcome.reason}: {outcome.error}", file=sys.stderr)
    progress.finish()
    elapsed_s = time.perf_counter() - t0
    summary = f"{ok} of {len(jobs)} file(s) processed in {elapsed_s:.1f} s -> {cfg.outbox}"
    if failures:
        summary += "; failed: " + ", ".join(f"{reason} {n}" for reason, n in sorted(failures.items()))
    print(summary)
    return ExitCode.OK if not failures else ExitCode.SOME_FAILED


def _prepare_models(cfg: Config, earlier: dict | None = None):  # -> ocrd.engine.int8.cache.PreparedModels
    """The verified model set to run; says so on stderr when the INT8 recognizer is being built first.

    `earlier`: this command's own verification of the shipped files ({role: VerifiedFile}), reused.
    """
    from ocrd.engine.int8.cache import prepare_model_set
    from ocrd.logs import configure_logging

    # Warnings (an INT8 fallback) to stderr; stdout stays the command's own output.
    configure_logging(cfg.logging.format, "warning", stream=sys.stderr)
    told = False

    def waiting() -> None:
        nonlocal told
        if not told:
            print("ocrd: building the INT8 models from the installed ones (once per model, one to two minutes each)...",
                  file=sys.stderr)  # fmt: skip
            told = True

    return prepare_model_set(cfg, waiting=waiting, earlier=earlier)


def _same_source(json_path: Path, rel_path: str) -> bool:
    """An existing result may be replaced when it was made from the same relative input path."""
    try:
        with open(json_path, encoding="utf-8") as handle:
            return json.load(handle).get("source", {}).get("rel_path") == rel_path
    except (OSError, ValueError, AttributeError):
        return False


def cmd_models(args: argparse.Namespace) -> int:
    from ocrd.engine.models import model_set_from_config

    cfg = _load(args)
    model_set = model_set_from_config(cfg)
    rows = []
    problems = []
    verified = {}
    for model_file in model_set.files():
        try:
            verified[model_file.role] = model_file.verify_once()
            digest = verified[model_file.role].sha256
            status = "ok" if model_file.sha256 else "ok (custom, not pinned)"
        except OcrdError as exc:
            digest, status = "-", "ERROR"
            problems.append(str(exc))
        size = model_file.path.stat().st_size if model_file.path.is_file() else 0
        rows.append(
            {"role": model_file.role, "path": str(model_file.path), "bytes": size, "sha256": digest, "status": status}
        )
    used = {"recognizer": {"precision": cfg.recognize.precision}, "detector": {"precision": cfg.detect.precision}}
    if not problems and "int8" in (cfg.recognize.precision, cfg.detect.precision):
        # Verified shipped files: build (once) or verify the INT8 copies, as `ocrd run` would at start.
        models = _prepare_models(cfg, verified)
        for what, role, precision in (("recognizer", "rec", models.precision), ("detector", "det", models.det_precision)):
            used[what] = {"precision": precision, "path": str(getattr(models.model_set, role).path),
                          "sha256": models.verified[role].sha256, "fallback_reason": models.fallback_reason}  # fmt: skip
    if args.json:
        print(json.dumps({"model_set": model_set.name, "files": rows, **used, "problems": problems}, indent=1))
    else:
        print(f"model set: {model_set.name} - {model_set.description}")
        for row in rows:
            print(f"  {row['role']:<8}{row['status']:<8}{row['bytes']:>12,} B  sha256 {row['sha256']}\n          {row['path']}")
        for what, role in (("recognizer", "rec"), ("detector", "det")):
            if "path" in used[what] and used[what]["precision"] == "int8":
                print(f"  {role} int8 ok      built from {role}     sha256 {used[what]['sha256']}\n          {used[what]['path']}")
            elif used[what].get("fallback_reason") and getattr(cfg, "recognize" if role == "rec" else "detect").precision == "int8":
                print(f"warning: the FP32 {what} will be used: {used[what]['fallback_reason']}", file=sys.stderr)
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
    return ExitCode.UNAVAILABLE if problems else ExitCode.OK


def cmd_run(args: argparse.Namespace) -> int:
    from ocrd.http.server import HttpFrontend
    from ocrd.service.daemon import run_daemon
    from ocrd.logs import configure_logging

    cfg = _load(args)
    configure_logging(cfg.logging.format, cfg.logging.level, file=cfg.logging.file)
    executor = None
    if cfg.executor == "dask":  # ImportError without the extra: pip install 'ocrd-daemon[dask]'
        from ocrd.cluster.executor import DaskExecutor as executor
    return run_daemon(cfg, frontend=HttpFrontend(cfg) if cfg.http.enabled else None, executor=executor)


def cmd_token(args: argparse.Namespace) -> int:
    from ocrd.http.tokens import TokenStore

    cfg = _load(args)
    store = TokenStore.for_config(cfg)
    if args.token_command == "add":
        secret = store.add(args.name, args.role, args.inbox or (), known_inboxes=[i.name for i in cfg.inboxes])
        scope = f" (posts to {', '.join(args.inbox or ['every inbox'])})" if args.role == "upload" else ""
        print(f"token {args.name!r} created, role {args.role}{scope}; only its hash is kept, in {store.path}.\n"
              "Shown only now; send it as `Authorization: Bearer TOKEN` or `X-API-Token: TOKEN`:")  # fmt: skip
        print(secret)
    elif args.token_command == "list":
        print(f"{'name':<24}  {'role':<7}  {'created_at':<20}  inboxes")
        for t in store.tokens():
            inboxes = ", ".join(t.inboxes) or ("all" if t.role == "upload" else "-")
            print(f"{t.name:<24}  {t.role!s:<7}  {t.created_at:<20}  {inboxes}")
    else:
        store.revoke(args.name)
        print(f"token {args.name!r} revoked")
    return ExitCode.OK


def cmd_check(args: argparse.Namespace) -> int:
    from ocrd.service.check import check
    from ocrd.config.load import resolve_config_path

    config_path = resolve_config_path(args.config, os.environ)
    report = check(config_path)
    for problem in report.problems:
        print(f"ocrd check: {problem.kind}: {problem.message}", file=sys.stderr)
    if not args.quiet:
        for note in report.notes:
            print(f"note: {note}")
    if report.problems:
        return report.exit_code
    if not args.quiet:
        source = str(config_path) if config_path is not None else "built-in defaults"
        print(f"ok: config {source}; {report.directories} directories usable; "
              f"model set {report.model_set} verified ({', '.join(report.models)})")  # fmt: skip
    return ExitCode.OK


def _open_joblog_readonly(cfg: Config):
    from ocrd.jobs.log import JobLog

    return JobLog.open_readonly(cfg.state_dir / "jobs.db")


# A file name may hold a newline or a tab: shown as \x0a so that a row of the table stays one line.
_CONTROL_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F)}


def cmd_jobs(args: argparse.Namespace) -> int:
    cfg = _load(args)
    with _open_joblog_readonly(cfg) as joblog:
        rows = joblog.list_jobs(state=args.state, inbox=args.inbox, since=args.since, limit=args.limit)
    if args.json:
        print(json.dumps([row.as_dict() for row in rows], ensure_ascii=False, indent=1))
        return ExitCode.OK
    print(f"{'id':<26}  {'state':<11}  {'inbox':<10}  {'created_at':<24}  {'ms':>7}  {'MiB':>5}  {'reason':<16}  rel_path")
    for row in rows:
        ms = f"{row.total_ms:.0f}" if row.total_ms is not None else "-"
        mib = f"{row.peak_rss_mb:.0f}" if row.peak_rss_mb is not None else "-"  # the worker's peak on this file
        print(f"{row.id:<26}  {row.state!s:<11}  {row.inbox:<10}  {row.created_at:<24}  {ms:>7}  {mib:>5}  "
              f"{row.reason or '-':<16}  {row.rel_path.translate(_CONTROL_ESCAPES)}")  # fmt: skip
    return ExitCode.OK


def cmd_status(args: argparse.Namespace) -> int:
    cfg = _load(args)
    with _open_joblog_readonly(cfg) as joblog:
        status = joblog.status()
    if args.json:
        print(json.dumps(status, indent=1, default=str))
        return ExitCode.OK
    counts = status["counts"]
    print("jobs: " + ", ".join(f"{state} {n}" for state, n in counts.items()) + f" (total {status['total']})")
    print(f"done in the last hour: {status['done_last_hour']}")
    print(f"oldest queued: {status['oldest_queued_created_at'] or '-'}")
    from ocrd.service.executor import executor_status_line  # the daemon's pool, or its scheduler and workers
    print(executor_status_line(cfg.state_dir))
    return ExitCode.OK


def cmd_requeue(args: argparse.Namespace) -> int:
    from ocrd.service.requeue import requeue_jobs

    cfg = _load(args)
    if not args.job_ids and not args.state:
        print("ocrd requeue: give job ids or --state failed|quarantined", file=sys.stderr)
        return ExitCode.SOME_FAILED
    moved, problems = requeue_jobs(cfg, args.job_ids, args.state)
    for problem in problems:
        print(f"ocrd requeue: {problem}", file=sys.stderr)
    print(f"{moved} job(s) requeued")
    return ExitCode.OK if not problems else ExitCode.SOME_FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocrd", description="OCR daemon: scans dropped into folders become text.")
    parser.add_argument("--version", action="version", version=f"ocrd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "-c", "--config", help="config file (default: $OCRD_CONFIG, then ./config.yaml, then built-in defaults)"
        )
        return p

    p = with_config(sub.add_parser("process", help="OCR files and folders once, writing the daemon's outputs"))
    p.add_argument("paths", nargs="+", metavar="PATH", help="image, PDF or TIFF files, or folders of them")
    p.add_argument("-o", "--outbox", help="write results here instead of the configured outbox")
    p.add_argument("-v", "--verbose", action="store_true", help="print a line per processed file")
    p.set_defaults(func=cmd_process)

    p = with_config(sub.add_parser("run", help="run the daemon in the foreground (systemd runs this)"))
    p.set_defaults(func=cmd_run)

    p = with_config(sub.add_parser("jobs", help="list jobs from the job log, newest first"))
    p.add_argument("--state", choices=["queued", "running", "done", "failed", "quarantined", "duplicate"])
    p.add_argument("--inbox", help="only jobs of this inbox")
    p.add_argument("--since", help="only jobs created at or after this ISO 8601 time (UTC)")
    p.add_argument("--limit", type=int, default=50, help="at most this many rows (default 50)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_jobs)

    p = with_config(sub.add_parser("status", help="job counts per state, recent throughput, oldest queued job"))
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)

    p = with_config(sub.add_parser("requeue", help="put failed or quarantined files back in the queue"))
    p.add_argument("job_ids", nargs="*", metavar="JOB_ID")
    p.add_argument("--state", choices=["failed", "quarantined"], help="requeue every job in this state")
    p.set_defaults(func=cmd_requeue)

    p = sub.add_parser("token", help="API tokens for the HTTP API: add, list, revoke")
    tokens = p.add_subparsers(dest="token_command", required=True)
    t = with_config(tokens.add_parser("add", help="create a token; prints it once, as the last line"))
    t.add_argument("name", help="who or what uses it (letters, digits, _ . -)")
    t.add_argument("--role", required=True, choices=["upload", "read", "admin"],
                   help="upload: post files, read its own jobs; read: read every job; admin: everything, requeue too")
    t.add_argument("--inbox", action="append", metavar="NAME", help="(upload) an inbox it may post to; repeat; default all")
    with_config(tokens.add_parser("list", help="the stored tokens' names and roles (the tokens are not kept)"))
    with_config(tokens.add_parser("revoke", help="delete a token: it stops working at once")).add_argument("name")
    p.set_defaults(func=cmd_token)

    p = with_config(sub.add_parser("check", help="check config, directories and models before `ocrd run`"))
    p.add_argument("-q", "--quiet", action="store_true", help="print problems only")
    p.set_defaults(func=cmd_check)

    p = with_config(sub.add_parser("models", help="list and verify the configured model files"))
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except OcrdError as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        for problem in problems:
            print(f"ocrd: {problem}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: say what broke, exit 70
        print(f"ocrd: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = ExitCode.INTERNAL
    sys.exit(int(code))
