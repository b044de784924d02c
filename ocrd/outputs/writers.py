"""Atomic writers for a document's outputs (JSON, text, visualization, PDF, hOCR, ALTO) and their naming; never runs a model or touches the job log.

Durability protocol for every file: write a hidden temp file (``.<name>.<random>.tmp``)
in the destination directory, flush, ``os.fsync``, ``os.replace`` onto the final
name, then fsync the directory so the rename itself survives a power cut. The
temp file lives in the same directory so the rename never crosses filesystems,
and its ``.``-prefix / ``.tmp`` suffix keep watchers and sync tools away from it.

Completeness marker: ``write_outputs`` encodes the whole set first (``plan_outputs``),
then writes the visualizations, the PDF, hOCR, ALTO and text, and ``<stem>.json``
last, so a present JSON file means the whole set is complete. Anything found
without its JSON is the debris of an interrupted write. An output left out on
purpose (a PDF input that must not be rewritten) is named in the JSON's ``omitted``.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Collection, Sequence
from importlib import resources
from pathlib import Path
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from ocrd.durable import fsync_dir
from ocrd.outputs.alto import alto_text
from ocrd.outputs.hocr import hocr_text
from ocrd.outputs.visualization import render_visualization

if TYPE_CHECKING:
    from ocrd.engine.results import DocumentResult
    from ocrd.outputs.pdf_document import ImagePages, Omitted, PdfSource

RESULT_SCHEMA_RESOURCE = ("schema", "result-v1.json")
JPEG_QUALITY = 85  # thin coloured lines stay clean without the size of near-lossless quality
PNG_COMPRESSION = 3  # zlib level: nearly the size of level 9 at a fraction of the time
MAX_COLLISION_SUFFIX = 9999


class OutputsConfig(Protocol):
    """What this module reads from ``ocrd.config.schema.OutputsConfig`` (kept structural so the layers stay decoupled)."""

    @property
    def json(self) -> bool: ...
    @property
    def text(self) -> bool: ...
    @property
    def visualization(self) -> bool: ...
    @property
    def vis_format(self) -> Literal["jpg", "png"] | str: ...
    @property
    def vis_max_side_px(self) -> int: ...
    @property
    def pdf(self) -> bool: ...
    @property
    def pdfa(self) -> bool: ...
    @property
    def pdf_existing_text(self) -> str: ...
    @property
    def hocr(self) -> bool: ...
    @property
    def alto(self) -> bool: ...


# ---------------------------------------------------------------- atomic primitives


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old file or the new one, never a mix.

    On any failure the temp file is removed and the ``OSError`` propagates.
    """
    path = Path(path)
    directory = path.parent
    fd, tmp_path = _create_temp(directory, path.name)
    try:
        with os.fdopen(fd, "wb") as tmp_file:
            tmp_file.write(data)
            tmp_file.flush()
            os.fsync(tmp_file.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        # BaseException too: a KeyboardInterrupt or worker timeout must not leave debris.
        tmp_path.unlink(missing_ok=True)
        raise
    fsync_dir(directory)


def _create_temp(directory: Path, final_name: str) -> tuple[int, Path]:
    # Not tempfile.mkstemp: it forces mode 0600, and results must get the ordinary
    # umask-derived mode so the people reading the outbox can open them.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    # Clipped so a long final name plus our affixes stays under NAME_MAX (255 bytes).
    base = final_name.encode("utf-8")[:200].decode("utf-8", errors="ignore")
    for _ in range(100):
        tmp_path = directory / f".{base}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp_path, flags, 0o666), tmp_path
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temp file for {final_name} in {directory}")


def atomic_write_text(path: Path, text: str) -> None:
    """UTF-8 text version of ``atomic_write_bytes``; newlines are written as given."""
    atomic_write_bytes(path, text.encode("utf-8"))


# ---------------------------------------------------------------- naming


def _vis_suffix(cfg: OutputsConfig) -> str:
    fmt = str(cfg.vis_format).lower()
    if fmt not in ("jpg", "png"):
        raise ValueError(f"vis_format must be 'jpg' or 'png', not {cfg.vis_format!r}")
    return fmt


def vis_paths(out_dir: Path, stem: str, page_count: int, cfg: OutputsConfig) -> list[Path]:
    """Visualization paths: ``<stem>.vis.jpg`` for one page, ``<stem>.p001.vis.jpg``… for more."""
    ext = _vis_suffix(cfg)
    if page_count == 1:
        return [out_dir / f"{stem}.vis.{ext}"]
    return [out_dir / f"{stem}.p{number:03d}.vis.{ext}" for number in range(1, page_count + 1)]


def output_paths(out_dir: Path, stem: str, page_count: int, cfg: OutputsConfig) -> list[Path]:
    """The paths ``write_outputs`` would write, JSON first, honouring the enabled outputs."""
    out_dir = Path(out_dir)
    paths: list[Path] = []
    if cfg.json:
        paths.append(out_dir / f"{stem}.json")
    if cfg.text:
        paths.append(out_dir / f"{stem}.txt")
    if cfg.visualization:
        paths.extend(vis_paths(out_dir, stem, page_count, cfg))
    if cfg.pdf:
        paths.append(out_dir / f"{stem}.pdf")
    if cfg.hocr:
        paths.append(out_dir / f"{stem}.hocr")
    if cfg.alto:
        paths.append(out_dir / f"{stem}.alto.xml")
    return paths


def choose_stem(
    out_dir: Path,
    stem: str,
    page_count: int,
    cfg: OutputsConfig,
    is_ours: Callable[[Path], bool] | None = None,
    reserved: Collection[str] = frozenset(),
) -> str:
    """Pick the output stem: ``stem`` when free, else ``stem~1``, ``stem~2``… the first free one.

    A stem whose outputs exist is still ours when ``<stem>.json`` exists and
    ``is_ours(json_path)`` says it was written by this same job; rewriting it then is
    idempotent. Without a JSON (disabled, or an interrupted earlier write) existing
    files cannot be attributed, so they are left alone and a suffix is used.

    Only a decision, not a reservation: two writers racing on one stem must be
    serialised by the caller; ``reserved`` holds stems the caller already handed
    out in ``out_dir`` and skips them.
    """
    out_dir = Path(out_dir)
    for n in range(MAX_COLLISION_SUFFIX + 1):
        candidate = stem if n == 0 else f"{stem}~{n}"
        if candidate in reserved:
            continue
        existing = [p for p in output_paths(out_dir, candidate, page_count, cfg) if _lexists(p)]
        if not existing:
            return candidate
        json_path = out_dir / f"{candidate}.json"
        if is_ours is not None and _lexists(json_path) and is_ours(json_path):
            return candidate
    raise FileExistsError(f"no free output name for {stem!r} in {out_dir} after {MAX_COLLISION_SUFFIX} tries")


def _lexists(path: Path) -> bool:
    # A dangling symlink is still a name we must not replace.
    return os.path.lexists(path)


# ---------------------------------------------------------------- writing


@dataclass(frozen=True, slots=True)
class OutputPlan:
    """A document's output set, encoded and not yet written: (path, bytes) in writing order, JSON last."""

    files: tuple[tuple[Path, bytes], ...]
    omitted: tuple[Omitted, ...] = ()


def plan_outputs(
    doc: DocumentResult,
    page_images: Sequence[np.ndarray],
    out_dir: Path,
    stem: str,
    cfg: OutputsConfig,
    *,
    pdf_source: PdfSource | None = None,
) -> OutputPlan:
    """Encode every enabled output of `doc`; nothing is written, so a failure here leaves nothing behind.

    ``page_images`` are the displayed pages (BGR uint8), one per ``doc.pages`` entry, read for the
    visualization (and, without ``pdf_source``, for the PDF: then they must be full size).
    ``pdf_source`` is what the PDF is made from (the pipeline's encoded page pictures, or the input PDF).
    """
    out_dir = Path(out_dir)
    page_count = len(doc.pages)
    planned: list[tuple[Path, bytes]] = []
    omitted: tuple[Omitted, ...] = ()
    if cfg.visualization:
        if len(page_images) != page_count:
            raise ValueError(f"{len(page_images)} page images for {page_count} pages")
        ext = _vis_suffix(cfg)
        for path, image, page in zip(vis_paths(out_dir, stem, page_count, cfg), page_images, doc.pages):
            vis = render_visualization(image, page, cfg.vis_max_side_px)
            planned.append((path, encode_image(vis, ext)))
    if cfg.pdf:
        # Imported here: the daemon's main process uses this module for names only and never loads qpdf.
        from ocrd.outputs.pdf_document import encode_pdf

        encoding = encode_pdf(doc, pdf_source or _pictures_of(doc, page_images), pdfa=cfg.pdfa,
                              existing_text=cfg.pdf_existing_text)  # fmt: skip
        omitted = encoding.omitted
        if encoding.data is not None:
            planned.append((out_dir / f"{stem}.pdf", encoding.data))
    if cfg.hocr:
        planned.append((out_dir / f"{stem}.hocr", hocr_text(doc).encode("utf-8")))
    if cfg.alto:
        planned.append((out_dir / f"{stem}.alto.xml", alto_text(doc).encode("utf-8")))
    if cfg.text:
        planned.append((out_dir / f"{stem}.txt", (doc.text + "\n").encode("utf-8")))
    if cfg.json:
        result = doc.to_dict()
        if omitted:
            result["omitted"] = [item.to_dict() for item in omitted]
        planned.append((out_dir / f"{stem}.json", result_json_text(result).encode("utf-8")))
    return OutputPlan(tuple(planned), omitted)


def _pictures_of(doc: DocumentResult, page_images: Sequence[np.ndarray]) -> ImagePages:
    """The PDF's pages from full-size page images, when the caller has no encoded pictures."""
    from ocrd.outputs.pdf_document import ImagePages
    from ocrd.outputs.pdf_images import pixels_picture

    if len(page_images) != len(doc.pages) or any(
        image.shape[:2] != (page.height, page.width) for image, page in zip(page_images, doc.pages)
    ):
        raise ValueError("a PDF needs its pages: pass pdf_source, or full-size page images")
    return ImagePages(tuple(pixels_picture(image, None) for image in page_images))


def write_planned(plan: OutputPlan, out_dir: Path) -> list[Path]:
    """Write an encoded output set atomically, file by file in its order (the JSON last); on failure
    the files this call wrote are taken back, since a set without its JSON is incomplete."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for path, data in plan.files:
            atomic_write_bytes(path, data)
            written.append(path)
    except BaseException:
        # A full disk after the visualization must not leave orphans; the retry writes all again.
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


def write_outputs(
    doc: DocumentResult,
    page_images: Sequence[np.ndarray],
    out_dir: Path,
    stem: str,
    cfg: OutputsConfig,
    *,
    pdf_source: PdfSource | None = None,
) -> list[Path]:
    """Encode (``plan_outputs``) and write the enabled outputs of ``doc`` under ``out_dir``; the paths written.

    Order: visualizations, PDF, hOCR, ALTO, text, JSON last — the JSON's presence marks a complete set.
    Everything is encoded before the first file is written, so an encoding problem leaves nothing behind.
    """
    return write_planned(plan_outputs(doc, page_images, out_dir, stem, cfg, pdf_source=pdf_source), out_dir)


def result_json_text(result: dict[str, Any]) -> str:
    """Serialise an ``ocrd/result/v1`` dict readably: one text line per JSON line, its words below it.

    Objects and arrays that hold no object (``source``, ``timings_ms``, a word with its
    box) are written on one line; so is an object whose last member alone holds objects,
    and those hang below it one per line (a text line with its box, then its words).
    Everything else is indented. NaN and infinity are refused because they are not JSON.
    """
    return _format_json(result, 0) + "\n"


def _flat_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))


def _format_json(value: Any, depth: int) -> str:
    if not isinstance(value, dict | list) or not _contains_object(value):
        return _flat_json(value)
    pad, inner = " " * depth, " " * (depth + 1)
    if isinstance(value, dict) and _hangs(value):
        *head, (last_key, items) = value.items()
        members = [f"{_flat_json(str(key))}: {_flat_json(item)}" for key, item in head]
        rows = ",\n".join(f"{inner}{_flat_json(item)}" for item in items)
        return "{" + ", ".join([*members, f"{_flat_json(str(last_key))}: ["]) + "\n" + rows + "\n" + pad + "]}"
    if isinstance(value, dict):
        items = [
            f"{inner}{json.dumps(str(key), ensure_ascii=False)}: {_format_json(item, depth + 1)}"
            for key, item in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    items = [f"{inner}{_format_json(item, depth + 1)}" for item in value]
    return "[\n" + ",\n".join(items) + "\n" + pad + "]"


def _hangs(value: dict) -> bool:
    """True when only the last member holds objects, and it is a list of objects that hold none."""
    *head, last = value.values()
    return (
        isinstance(last, list)
        and all(isinstance(item, dict) and not _contains_object(item) for item in last)
        and not _contains_object(head)
    )


def _contains_object(value: dict | list) -> bool:
    children = value.values() if isinstance(value, dict) else value
    return any(isinstance(child, dict) or (isinstance(child, list) and _contains_object(child)) for child in children)


def load_result_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``ocrd/result/v1``, shipped as package data."""
    resource = resources.files("ocrd.outputs").joinpath(*RESULT_SCHEMA_RESOURCE)
    return json.loads(resource.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- visualization (drawn by outputs_vis)


def encode_image(image: np.ndarray, ext: str) -> bytes:
    """Encode to JPEG or PNG bytes.

    ``cv2.imencode`` writes only pixels: no EXIF, XMP or ICC profile, so nothing from
    the source file (camera, GPS, author) leaks into the outbox.
    """
    import cv2  # imported here: the daemon's main process uses this module only for names and atomic writes
    if ext == "jpg":
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    elif ext == "png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]
    else:
        raise ValueError(f"unsupported visualization format {ext!r}")
    ok, buffer = cv2.imencode(f".{ext}", image, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} image as {ext}")
    return buffer.tobytes()
