"""The settings: frozen config dataclasses, each key's built-in default and rule, and the pool shape derived from them.

Every key is declared once, as a dataclass field whose metadata holds its
validation rule (`key(default, rule)`, see `ocrd.config.rules`); the loader
walks those declarations, so adding a key is one line. Values from a file and
built-in defaults go through the same rules, so defaults are validated and
paths resolved alike.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ocrd.config import rules
from ocrd.config.rules import Rule, key, parse_section, section, show_value

_NAME_PATTERN = r"[A-Za-z0-9_-]+"


@dataclass(frozen=True, slots=True)
class InboxConfig:
    """One watched folder; `name` names its sub-folders in outbox/archive/quarantine and its job-log rows."""

    name: str = key(rule=rules.Text(_NAME_PATTERN, "a name of letters, digits, _ and -"))
    path: Path = key(rule=rules.FsPath())
    recursive: bool = key(True, rules.Bool())
    watch: str = key("auto", rules.Choice("auto", "inotify", "poll"))
    settle_s: float = key(2.0, rules.Float(0, lo_open=True))


@dataclass(frozen=True, slots=True)
class Profile:
    """What a `profile` puts in the keys left null: the model set and each model's precision."""

    model_set: str
    detect_precision: str
    recognize_precision: str


# The tiny set stays FP32: its INT8 copies were slower and read receipts worse (CER 0.093 vs 0.083, measured;
# docs/benchmarks.md, "profile: fast").
PROFILES = {
    "standard": Profile("ppocrv6-small", detect_precision="int8", recognize_precision="int8"),
    "fast": Profile("ppocrv6-tiny", detect_precision="fp32", recognize_precision="fp32"),
}

_MAX_AUTO_WORKERS = 8  # beyond this, memory grows faster than throughput on typical servers


def pool_shape(cpus: int, count: int | str, threads: int | str) -> tuple[int, int]:
    """Return (worker processes, ONNX intra-op threads per worker) for `cpus` cores.

    Why: one page's work is many small recognition calls that parallelise
    poorly inside one ONNX session, while files are independent. Measured on 2
    cores (docs/benchmarks.md): 2 workers x 1 thread process 1.7x the images of
    1 worker x 2 threads. "auto" therefore runs one worker per core, up to 8
    (each worker holds its own models, about 300 MB), and shares any remaining
    cores out as threads, keeping processes * threads <= cpus. An explicit value
    is used as given.
    """
    cpus = max(1, cpus)
    workers = min(cpus, _MAX_AUTO_WORKERS) if count == "auto" else int(count)
    per_worker = max(1, cpus // workers) if threads == "auto" else int(threads)
    return workers, per_worker


@dataclass(frozen=True, slots=True)
class WorkersConfig:
    """The worker process pool: size, per-job timeout and recycling limits."""

    count: int | str = key("auto", rules.IntOrAuto())
    intra_op_threads: int | str = key("auto", rules.IntOrAuto())
    # A job handed out while no other runs or waits reads with this many ONNX threads (a second session per
    # model); auto: every usable CPU; 1 (or <= intra_op_threads): off. Cuts an idle daemon's latency.
    alone_threads: int | str = key("auto", rules.IntOrAuto())
    job_timeout_s: float = key(300.0, rules.Float(0, lo_open=True))
    max_jobs_per_worker: int = key(500, rules.Int(1))
    max_rss_mb: int = key(1500, rules.Int(1))
    # Off: a worker gives each page's memory back after the job (flat RSS). On: a few % faster, RSS climbs (measured).
    reuse_freed_memory: bool = key(False, rules.Bool())

    def resolved_count(self, cpus: int) -> int:
        return pool_shape(cpus, self.count, self.intra_op_threads)[0]

    def resolved_threads(self, cpus: int) -> int:
        return pool_shape(cpus, self.count, self.intra_op_threads)[1]

    def resolved_alone_threads(self, cpus: int) -> int:
        return max(1, cpus) if self.alone_threads == "auto" else int(self.alone_threads)


@dataclass(frozen=True, slots=True)
class IntakeConfig:
    """Limits the file gate enforces before anything is decoded in full."""

    max_bytes: int = key(200 * 1024 * 1024, rules.Int(1))
    max_pixels: int = key(50_000_000, rules.Int(1))
    max_side_px: int = key(30_000, rules.Int(1))
    max_pages: int = key(100, rules.Int(1))
    pdf_dpi: int = key(200, rules.Int(72, 600))
    young_file_s: float = key(60.0, rules.Float(0))  # a truncated file younger than this may still be copying


@dataclass(frozen=True, slots=True)
class DetectConfig:
    """DB text detection: input scaling, normalisation, thresholds and box post-processing."""

    model: Path | None = key(None, rules.FsPath(optional=True))  # custom ONNX overrides the model set's
    limit_side_px: int = key(1280, rules.Int(32, 8192))
    limit_type: str = key("max", rules.Choice("max", "min"))
    max_side_px: int = key(4000, rules.Int(32, 16384))  # cap for limit_type=min
    max_upscale: float = key(2.0, rules.Float(1, 8))  # limit_type=max: small pages grow by at most this
    thresh: float = key(0.3, rules.Float(0, 1))
    box_thresh: float = key(0.5, rules.Float(0, 1))
    unclip_ratio: float = key(1.4, rules.Float(0, 5, lo_open=True))
    max_candidates: int = key(1000, rules.Int(1))
    min_size_px: int = key(3, rules.Int(1))
    dilate: bool = key(False, rules.Bool())
    # int8: a quantized copy built once (ocrd.engine.int8.cache); null (None only before loading): the profile's.
    precision: str | None = key(None, rules.Choice("int8", "fp32", optional=True))
    # null: the model set's own normalisation; set both for a custom detector.
    mean: tuple[float, float, float] | None = key(None, rules.FloatTuple(3, optional=True))
    std: tuple[float, float, float] | None = key(None, rules.FloatTuple(3, positive=True, optional=True))


@dataclass(frozen=True, slots=True)
class ClassifyConfig:
    """Text-line orientation classifier (0 / 180 degrees)."""

    enabled: bool = key(True, rules.Bool())
    model: Path | None = key(None, rules.FsPath(optional=True))
    thresh: float = key(0.9, rules.Float(0, 1))
    batch_size: int = key(6, rules.Int(1, 256))
    # The widest lines are classified first; the rest only when one of them is upside down.
    screen_lines: int = key(6, rules.Int(0, 4096))
    input_width_px: int = key(192, rules.Int(8, 4096))
    input_height_px: int = key(48, rules.Int(8, 1024))


@dataclass(frozen=True, slots=True)
class RecognizeConfig:
    """CTC text recognition: input size, batching, charset and the confidence floor."""

    model: Path | None = key(None, rules.FsPath(optional=True))
    charset: Path | None = key(None, rules.FsPath(optional=True))  # only when the model embeds none
    input_height_px: int = key(48, rules.Int(8, 1024))
    max_width_px: int = key(3200, rules.Int(8, 32768))
    batch_size: int = key(6, rules.Int(1, 256))
    max_stretch: float = key(0.05, rules.Float(0, 1))  # widen crops by up to this to share a batch
    crop_margin: float = key(0.1, rules.Float(0, 1))  # cut each line crop this share of its height taller above and below
    min_batch_width_h: float = key(2.0, rules.Float(0, 20))  # narrower batches are padded to this many input heights wide
    # int8: a quantized copy built once (ocrd.engine.int8.cache); null (None only before loading): the profile's.
    precision: str | None = key(None, rules.Choice("int8", "fp32", optional=True))
    min_confidence: float = key(0.5, rules.Float(0, 1))  # lines below are dropped
    mean: float = key(0.5, rules.Float())
    std: float = key(0.5, rules.Float(0, lo_open=True))


@dataclass(frozen=True, slots=True)
class OutputsConfig:
    """Which result files are written per input, and the visualization's format and size."""

    json: bool = key(True, rules.Bool())
    text: bool = key(True, rules.Bool())
    visualization: bool = key(True, rules.Bool())
    vis_format: str = key("jpg", rules.Choice("jpg", "png"))
    vis_max_side_px: int = key(2000, rules.Int(16, 30_000))
    pdf: bool = key(True, rules.Bool())  # <stem>.pdf: the pages with invisible text (a JPEG embedded as it is)
    pdfa: bool = key(False, rules.Bool())  # the PDF as PDF/A-2b (with pdf: true)
    # An input PDF's page that already has text: "skip" keeps it as it is, "add" lays ocrd's text over it too.
    pdf_existing_text: str = key("skip", rules.Choice("skip", "add"))
    hocr: bool = key(False, rules.Bool())  # <stem>.hocr (hOCR 1.2)
    alto: bool = key(False, rules.Bool())  # <stem>.alto.xml (ALTO 4.4)


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """Log rendering, level and the optional file sink."""

    format: str = key("auto", rules.Choice("auto", "json", "console"))
    level: str = key("info", rules.Choice("debug", "info", "warning", "error"))
    file: Path | None = key(None, rules.FsPath(optional=True))


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """The optional HTTP listener: /healthz, /metrics, the upload and job API, and the web page."""

    enabled: bool = key(False, rules.Bool())
    listen: str = key("127.0.0.1:9478", rules.HostPort())
    max_upload_mb: int = key(100, rules.Int(1, 100_000))  # larger bodies: 413, nothing kept
    max_queued: int = key(1000, rules.Int(1))  # more queued jobs than this: uploads get 503 + Retry-After
    # Host header names accepted (DNS rebinding); the listen address is always accepted too.
    allowed_hosts: tuple[str, ...] = key(("localhost", "127.0.0.1", "::1"), rules.HostNames())
    token_rate_per_s: float = key(20.0, rules.Float(0, lo_open=True))  # API requests per token, sustained
    token_burst: int = key(60, rules.Int(1))  # ... and in a burst (then 429 + Retry-After)
    min_free_mb: int = key(100, rules.Int(0))  # free space an upload must leave on the inbox's disk, else 507

    def address(self) -> tuple[str, int]:
        """`listen` split into (host, port); brackets around an IPv6 host are removed."""
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True, slots=True)
class DaskConfig:
    """`executor: dask`: the scheduler the jobs go to, its mutual TLS files, and how many may be in flight."""

    scheduler: str | None = key(None, rules.SchedulerAddress())  # tcp://host:port or tls://host:port
    tls_ca_file: Path | None = key(None, rules.FsPath(optional=True))  # tls://: the CA that signed every certificate
    tls_cert_file: Path | None = key(None, rules.FsPath(optional=True))  # tls://: the daemon's (client) certificate
    tls_key_file: Path | None = key(None, rules.FsPath(optional=True))  # ... and its private key
    # Jobs handed to the scheduler at once; auto: twice the accepted workers' task threads (one running,
    # one waiting each, as the local pool does), so the backlog stays in the job log, not in the scheduler.
    max_in_flight: int | str = key("auto", rules.IntOrAuto())
    connect_timeout_s: float = key(10.0, rules.Float(0, lo_open=True))  # per try to reach the scheduler


@dataclass(frozen=True, eq=False, repr=False)
class _InboxList(Rule):
    """The `inboxes` list: at least one InboxConfig section, with unique names."""

    def parse(self, value: Any, where: str, base_dir: Path, problems: list[str]) -> Any:
        if not isinstance(value, (list, tuple)) or not value:
            problems.append(f"{where}: must be a list of at least one inbox, got {show_value(value)}")
            return None
        inboxes = [
            parse_section(InboxConfig, item, f"{where}[{i}]", base_dir, problems)
            for i, item in enumerate(value)
        ]
        # Checked on the raw names so a duplicate is reported even when the
        # entries have other problems too.
        first_seen: dict[str, int] = {}
        for i, item in enumerate(value):
            name = item.get("name") if isinstance(item, Mapping) else getattr(item, "name", None)
            if not isinstance(name, str):
                continue
            if name in first_seen:
                problems.append(
                    f"{where}[{i}].name: must be unique, got {name!r} "
                    f"(also {where}[{first_seen[name]}].name)"
                )
            else:
                first_seen[name] = i
        if any(inbox is None for inbox in inboxes):
            return None
        return tuple(inboxes)


def _default_inboxes() -> tuple[InboxConfig, ...]:
    return (InboxConfig(name="scans", path=Path("var/inbox/scans")),)


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration. Build it with load_config/default_config so paths are absolute."""

    inboxes: tuple[InboxConfig, ...] = field(
        default_factory=_default_inboxes, metadata={"rule": _InboxList()}
    )
    outbox: Path = key(Path("var/outbox"), rules.FsPath())
    archive: Path = key(Path("var/archive"), rules.FsPath())
    quarantine: Path = key(Path("var/quarantine"), rules.FsPath())
    state_dir: Path = key(Path("var/state"), rules.FsPath())
    cache_dir: Path | None = key(None, rules.FsPath(optional=True))  # derived files; None: see ocrd.engine.int8.cache.cache_dir_for
    on_success: str = key("archive", rules.Choice("archive", "delete", "keep"))
    duplicates: str = key("skip", rules.Choice("skip", "reprocess"))
    max_attempts: int = key(3, rules.Int(1))
    rescan_interval_s: float = key(60.0, rules.Float(0, lo_open=True))
    profile: str = key("standard", rules.Choice(*PROFILES))  # what model_set and the precisions left null mean
    # None only before loading: config_from_mapping puts the profile's in (ocrd.config.load), as for precision.
    model_set: str | None = key(None, rules.Text(optional=True))  # the models module checks the name
    workers: WorkersConfig = section(WorkersConfig)
    intake: IntakeConfig = section(IntakeConfig)
    detect: DetectConfig = section(DetectConfig)
    classify: ClassifyConfig = section(ClassifyConfig)
    recognize: RecognizeConfig = section(RecognizeConfig)
    outputs: OutputsConfig = section(OutputsConfig)
    logging: LoggingConfig = section(LoggingConfig)
    http: HttpConfig = section(HttpConfig)
    executor: str = key("local", rules.Choice("local", "dask"))  # dask: jobs run on a Dask cluster (pip extra [dask])
    dask: DaskConfig = section(DaskConfig)

    def with_outbox(self, path: str | os.PathLike[str]) -> Config:
        """A copy writing results to `path` (for `ocrd process -o`), relative to the cwd."""
        return replace(self, outbox=Path(path).expanduser().absolute())
