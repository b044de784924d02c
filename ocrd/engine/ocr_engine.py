"""OcrEngine: detection, optional angle classification and recognition wired into `read(image) -> PageResult`.

Built from config once per process; holds one session per model. Knows
nothing about files, formats, job logs or outputs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ocrd import __version__
from ocrd.engine.classify import AngleClassifier, ClassifyParams
from ocrd.engine.detect import DetectedBox, DetectParams, TextDetector
from ocrd.engine.geometry import (
    crop_quad,
    grown_across,
    page_turn,
    reading_quad,
    reads_vertically,
    span_quad,
    upright_page_points,
)
from ocrd.engine.models import ModelSet, VerifiedFile, model_set_from_config, read_charset
from ocrd.engine.recognize import Recognition, RecognizeParams, TextRecognizer, word_spans
from ocrd.engine.layout import page_blocks
from ocrd.engine.results import PageResult, PageTimings, Quad, TextLine, Word, block_around
from ocrd.engine.runtime import OnnxModel

if TYPE_CHECKING:
    from pathlib import Path

    from ocrd.config.schema import Config

Rows = tuple[tuple[int, ...], ...]  # a block's printed rows, each a tuple of line indices


@dataclass(frozen=True, slots=True)
class EngineSettings:
    detect: DetectParams
    classify: ClassifyParams | None  # None: angle classification off
    recognize: RecognizeParams
    min_confidence: float = 0.5


def settings_from_config(cfg: Config) -> EngineSettings:
    d, c, r = cfg.detect, cfg.classify, cfg.recognize
    return EngineSettings(
        detect=DetectParams(
            limit_side_px=d.limit_side_px,
            limit_type=d.limit_type,
            max_side_px=d.max_side_px,
            max_upscale=d.max_upscale,
            thresh=d.thresh,
            box_thresh=d.box_thresh,
            unclip_ratio=d.unclip_ratio,
            max_candidates=d.max_candidates,
            min_size_px=d.min_size_px,
            dilate=d.dilate,
        ),
        classify=(
            ClassifyParams(
                thresh=c.thresh,
                batch_size=c.batch_size,
                screen_lines=c.screen_lines,
                input_width_px=c.input_width_px,
                input_height_px=c.input_height_px,
            )
            if c.enabled
            else None
        ),
        recognize=RecognizeParams(
            input_height_px=r.input_height_px,
            max_width_px=r.max_width_px,
            batch_size=r.batch_size,
            max_stretch=r.max_stretch,
            crop_margin=r.crop_margin,
            min_batch_width_h=r.min_batch_width_h,
            mean=r.mean,
            std=r.std,
        ),
        min_confidence=r.min_confidence,
    )


def _quad(points: np.ndarray) -> Quad:
    return tuple((float(x), float(y)) for x, y in points)  # type: ignore[return-value]


def _text_line(box: DetectedBox, rec: Recognition, *, tall: bool, flipped: bool) -> TextLine:
    """The line `rec` read in `box`'s crop, with its words' boxes and its characters' places (see `TextLine`):
    fractions of the crop's width mapped back to the page through the crop's turns (`tall`: turned 90
    degrees by `crop_quad`; `flipped`: turned 180 by the classifier)."""
    reading = reading_quad(box.quad, tall=tall, flipped=flipped)
    words = tuple(
        Word(text=w.text, confidence=w.confidence, box=_quad(span_quad(reading, w.start, w.end)))
        for w in word_spans(rec)
    )
    return TextLine(
        text=rec.text,
        confidence=rec.confidence,
        det_score=box.score,
        box=_quad(box.quad),
        words=words,
        reading_quad=_quad(reading),
        chars=rec.spans,
    )


class OcrEngine:
    """Reads text lines from one page image. Safe to call repeatedly; holds no per-page state."""

    def __init__(
        self,
        model_set: ModelSet,
        settings: EngineSettings,
        *,
        intra_op_threads: int = 1,
        alone_threads: int = 0,
        verify: bool = True,
        verified: Mapping[str, VerifiedFile] | None = None,
    ):
        """`verified`: the caller's own verification of the files this run (by role), reused while they match.
        `alone_threads`: the threads a page read inside `running_alone(True)` uses (0: no second session)."""
        self.model_set = model_set
        self.settings = settings
        verified = verified or {}
        self.digests = {
            f.role: (f.verify_once(verified.get(f.role)).sha256 if verify else None) for f in model_set.files()
        }
        def load(path: Path) -> OnnxModel:
            model = OnnxModel(path, intra_op_threads=intra_op_threads, alone_threads=alone_threads)
            self._models.append(model)
            return model

        self._models: list[OnnxModel] = []
        self._detector = TextDetector(load(model_set.det.path), model_set.det_norm, settings.detect)
        self._classifier = None
        if settings.classify is not None and model_set.cls is not None:
            self._classifier = AngleClassifier(load(model_set.cls.path), settings.classify)
        rec_model = load(model_set.rec.path)
        chars = read_charset(rec_model.metadata, model_set.charset.path if model_set.charset else None)
        probe = rec_model.run(np.zeros((1, 3, settings.recognize.input_height_px, 64), dtype=np.float32))
        charset = TextRecognizer.charset_for(int(probe.shape[-1]), chars)
        self._recognizer = TextRecognizer(rec_model, charset, settings.recognize)

    @contextmanager
    def running_alone(self, alone: bool) -> Iterator[None]:
        """Pages read inside use the `alone_threads` sessions when `alone`: the job has the machine to itself."""
        for model in self._models:
            model.alone = alone
        try:
            yield
        finally:
            for model in self._models:
                model.alone = False

    @classmethod
    def from_config(
        cls,
        cfg: Config,
        *,
        model_set: ModelSet | None = None,
        intra_op_threads: int = 1,
        alone_threads: int = 0,
        verified: Mapping[str, VerifiedFile] | None = None,
    ) -> OcrEngine:
        """An engine with `cfg`'s settings; `model_set` None: the configured files as shipped (no INT8 copy).

        Callers that follow `recognize.precision` pass the set `ocrd.engine.int8.cache.prepare_model_set` returns.
        """
        return cls(model_set or model_set_from_config(cfg), settings_from_config(cfg),
                   intra_op_threads=intra_op_threads, alone_threads=alone_threads, verified=verified)  # fmt: skip

    def describe(self) -> dict[str, Any]:
        """The `engine` block of the result JSON: version, model set, files and parameters."""
        models = {
            f.role: {"file": f.path.name, "sha256": self.digests.get(f.role)} for f in self.model_set.files()
        }
        params: dict[str, Any] = {f"det_{k}": v for k, v in asdict(self.settings.detect).items()}
        params["cls_enabled"] = self._classifier is not None
        if self.settings.classify is not None:
            params["cls_thresh"] = self.settings.classify.thresh
            params["cls_screen_lines"] = self.settings.classify.screen_lines
        params.update({f"rec_{k}": v for k, v in asdict(self.settings.recognize).items()})
        params["min_confidence"] = self.settings.min_confidence
        return {"ocrd_version": __version__, "model_set": self.model_set.name, "models": models, "params": params}

    def warm_up(self) -> None:
        """Run every model once so the first real page does not pay for graph initialisation."""
        canvas = np.full((128, 256, 3), 255, dtype=np.uint8)
        canvas[56:72, 32:224] = 0
        self.read(canvas)

    def _laid_out_lines(
        self, image: np.ndarray, boxes: list[DetectedBox]
    ) -> tuple[list[DetectedBox], list[np.ndarray], list[tuple[bool, bool]], list[Rows]]:
        """Boxes in reading order, their line crops turned upright where needed, how each crop was turned
        (tall: by 90 degrees in `crop_quad`; flipped: by 180 by the classifier), and the page's blocks
        in reading order as rows of indices into those lists.

        The classifier decides per page which way lines lie (`classify.page_flips`, lines along the
        page and lines up/down it apart). A page fed upside down or sideways is laid out from its own
        top: the layout reads the boxes as they lie on the page turned upright, while the boxes keep
        the coordinates of the page as displayed.
        """
        margin = self.settings.recognize.crop_margin
        crops = [crop_quad(image, grown_across(b.quad, margin)) for b in boxes]
        vertical = [reads_vertically(b.quad) for b in boxes]
        flipped = [False] * len(crops)
        if self._classifier is not None and crops:
            crops, flipped = self._classifier.upright(crops, groups=[int(v) for v in vertical])
        height, width = image.shape[:2]
        turn = page_turn(vertical, flipped)
        blocks = page_blocks([upright_page_points(b.quad, turn, width, height) for b in boxes])
        order = [i for block in blocks for i in block.lines]
        position = {old: new for new, old in enumerate(order)}
        block_rows = [tuple(tuple(position[i] for i in row) for row in block.rows) for block in blocks]
        turned = [(vertical[i], flipped[i]) for i in order]
        return [boxes[i] for i in order], [crops[i] for i in order], turned, block_rows

    def detector_input(self, image: np.ndarray) -> np.ndarray:
        """The tensor `read(image)` would hand to the detection model (to calibrate a quantized copy)."""
        return self._detector.input_batch(image)

    def recognizer_inputs(self, image: np.ndarray) -> Iterator[np.ndarray]:
        """The batches `read(image)` would hand to the recognition model (to calibrate a quantized copy)."""
        _, crops, _, _ = self._laid_out_lines(image, self._detector.detect(image))
        for _, batch in self._recognizer.input_batches(crops):
            yield batch

    def read(self, image: np.ndarray, *, index: int = 0, orientation_applied: int = 0) -> PageResult:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a BGR uint8 image, got shape {image.shape} dtype {image.dtype}")
        height, width = image.shape[:2]
        t0 = time.perf_counter()
        boxes = self._detector.detect(image)
        t1 = time.perf_counter()
        boxes, crops, turned, block_rows = self._laid_out_lines(image, boxes)
        t2 = time.perf_counter()
        recognitions = self._recognizer.recognize(crops) if crops else []
        t3 = time.perf_counter()
        kept_at: dict[int, int] = {}  # index among all lines -> index among the lines kept
        lines: list[TextLine] = []
        for i, (box, rec, (tall, flipped)) in enumerate(zip(boxes, recognitions, turned)):
            if rec.text and rec.confidence >= self.settings.min_confidence:
                kept_at[i] = len(lines)
                lines.append(_text_line(box, rec, tall=tall, flipped=flipped))
        kept_lines = tuple(lines)
        blocks = []
        for rows in block_rows:
            kept_rows = tuple(row for row in (tuple(kept_at[i] for i in r if i in kept_at) for r in rows) if row)
            if kept_rows:
                blocks.append(block_around(kept_rows, kept_lines))
        return PageResult(
            width=width,
            height=height,
            lines=kept_lines,
            blocks=tuple(blocks),
            orientation_applied=orientation_applied,
            index=index,
            timings=PageTimings(
                detect_ms=(t1 - t0) * 1000, classify_ms=(t2 - t1) * 1000, recognize_ms=(t3 - t2) * 1000
            ),
        )
