"""The job function: one input through intake, the engine and the output encoders (`encode_job`, pure: bytes
in, encoded output set out), and `process_file`, which the local pool's workers run: read, encode, write.

Both share `_encode`, so a file gives the same output bytes whichever executor ran it. Neither touches
the job log (the main process owns it) nor decides output names (the caller does, so concurrent jobs
cannot pick the same one).
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ocrd.config.schema import Config
from ocrd.engine.ocr_engine import OcrEngine
from ocrd.intake.decode import Page
from ocrd.intake.gate import Document, document_from_bytes, open_document
from ocrd.jobs.records import EncodedJob, Job, Outcome
from ocrd.engine.results import DocumentResult, PageResult, SourceInfo
from ocrd.outputs.pdf_document import ImagePages, PdfPages, PdfSource
from ocrd.outputs.pdf_images import PagePicture, jpeg_picture, pixels_picture
from ocrd.outputs.visualization import visualization_copy
from ocrd.outputs.writers import OutputPlan, plan_outputs, write_planned


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def process_file(job: Job, engine: OcrEngine, cfg: Config) -> Outcome:
    """Read, recognise and write outputs for one file; raises InputError for a refused input."""
    t_start = time.perf_counter()
    document = open_document(job.path, cfg.intake)
    plan, outcome = _encode(job, document, engine, cfg, t_start)
    written = write_planned(plan, job.out_dir)
    return replace(outcome, outputs=tuple(str(p) for p in written))


def encode_job(job: Job, data: bytes, engine: OcrEngine, cfg: Config, *, mtime_s: float) -> EncodedJob:
    """The pure job function: the file's bytes (read through the gate by the caller, `mtime_s` its
    modification time) to the encoded output set and the Outcome. Writes no file and no row; raises
    InputError for a refused input, as `process_file` does."""
    t_start = time.perf_counter()
    document = document_from_bytes(data, job.path, cfg.intake, mtime_s=mtime_s)
    plan, outcome = _encode(job, document, engine, cfg, t_start)
    out_dir = Path(job.out_dir)
    return EncodedJob(outcome, tuple((path.relative_to(out_dir).as_posix(), data) for path, data in plan.files))


def _encode(job: Job, document: Document, engine: OcrEngine, cfg: Config, t_start: float) -> tuple[OutputPlan, Outcome]:
    """Read an opened document's pages and encode its output set; `outputs` of the Outcome left empty."""
    decode_s = time.perf_counter() - t_start
    pages: list[PageResult] = []
    vis_images: list[np.ndarray] = []
    # The PDF of an image input: each page's picture, encoded as soon as the page is decoded.
    pictures: list[PagePicture] | None = [] if cfg.outputs.pdf and document.format != "pdf" else None
    page_iter = iter(document.pages())
    while True:
        t0 = time.perf_counter()
        page = next(page_iter, None)
        decode_s += time.perf_counter() - t0
        if page is None:
            break
        with engine.running_alone(job.alone):
            pages.append(engine.read(page.image, index=page.index, orientation_applied=page.orientation_applied))
        if cfg.outputs.visualization:
            vis_images.append(visualization_copy(page.image, cfg.outputs.vis_max_side_px))
        if pictures is not None:
            pictures.append(_pdf_picture(document, page, pdfa=cfg.outputs.pdfa))
        del page
    total_ms = (time.perf_counter() - t_start) * 1000
    result = DocumentResult(
        job_id=job.job_id,
        created_at=utc_now_iso(),
        source=SourceInfo(
            inbox=job.inbox,
            rel_path=job.rel_path,
            sha256=document.sha256,
            bytes=document.size_bytes,
            format=document.format,
            pages=len(pages),
        ),
        engine=engine.describe(),
        pages=tuple(pages),
        decode_ms=decode_s * 1000,
        total_ms=total_ms,
    )
    pdf_source: PdfSource | None = None
    if cfg.outputs.pdf:
        pdf_source = PdfPages(document.data) if pictures is None else ImagePages(tuple(pictures))
    plan = plan_outputs(result, vis_images, job.out_dir, job.stem, cfg.outputs, pdf_source=pdf_source)
    del vis_images, pictures, pdf_source
    timings = result.timings_ms()
    return plan, Outcome(
        job_id=job.job_id,
        sha256=document.sha256,
        size_bytes=document.size_bytes,
        format=document.format,
        pages=len(pages),
        lines=result.line_count,
        mean_confidence=result.mean_confidence,
        decode_ms=timings["decode"],
        detect_ms=timings["detect"],
        classify_ms=timings["classify"],
        recognize_ms=timings["recognize"],
        total_ms=timings["total"],
        worker_pid=os.getpid(),
        # An output left out on purpose (a PDF that must not be rewritten): said on the done row.
        reason=str(plan.omitted[0].reason) if plan.omitted else None,
        error="; ".join(item.message for item in plan.omitted) or None,
    )


def _pdf_picture(document: Document, page: Page, *, pdfa: bool) -> PagePicture:
    """The page's image for the PDF: a JPEG file as it is (its orientation applied by the placement),
    anything else encoded losslessly from the decoded page now, so no decoded page is kept for it."""
    dpi = document.page_dpi(page.index)
    if document.format == "jpeg":
        picture = jpeg_picture(document.data, turn_degrees=page.orientation_applied, mirrored=page.mirrored,
                               dpi=dpi, allow_cmyk=not pdfa)  # fmt: skip
        if picture is not None:
            return picture
    if dpi is not None and page.orientation_applied in (90, 270):
        dpi = (dpi[1], dpi[0])  # the decoded page is turned: its x is the file's y
    return pixels_picture(page.image, dpi)
