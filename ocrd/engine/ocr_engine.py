"""OcrEngine: detection, optional angle classification and recognition wired into `read(image) -> PageResult`.

Built from config once per process; holds one session per model. Knows
nothing about files, formats, job logs or outputs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ocrd import __version__
from ocrd.engine.classify import AngleClassifier, ClassifyParams
from ocrd.engine.detect import DetectedBox, DetectParams, TextDetector
from ocrd.engine.geometry import crop_quad, page_turn, reading_rows, reads_vertically, upright_page_points
from ocrd.engine.models import ModelSet, VerifiedFile, model_set_from_config, read_charset
from ocrd.engine.recognize import RecognizeParams, TextRecognizer
from ocrd.engine.results import PageResult, PageTimings, TextLine
from ocrd.engine.runtime import OnnxModel

if TYPE_CHECKING:
    from ocrd.config.schema import Config


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
            mean=r.mean,
            std=r.std,
        ),
        min_confidence=r.min_confidence,
    )


class OcrEngine:
    """Reads text lines from one page image. Safe to call repeatedly; holds no per-page state."""

    def __init__(
        self,
        model_set: ModelSet,
        settings: EngineSettings,
        *,
        intra_op_threads: int = 1,
        verify: bool = True,
        verified: Mapping[str, VerifiedFile] | None = None,
    ):
        """`verified`: the caller's own verification of the files this run (by role), reused while they match."""
        self.model_set = model_set
        self.settings = settings
        verified = verified or {}
        self.digests = {
            f.role: (f.verify_once(verified.get(f.role)).sha256 if verify else None) for f in model_set.files()
        }
        self._detector = TextDetector(
            OnnxModel(model_set.det.path, intra_op_threads=intra_op_threads), model_set.det_norm, settings.detect
        )
        self._classifier = None
        if settings.classify is not None and model_set.cls is not None:
            self._classifier = AngleClassifier(
                OnnxModel(model_set.cls.path, intra_op_threads=intra_op_threads), settings.classify
            )
        rec_model = OnnxModel(model_set.rec.path, intra_op_threads=intra_op_threads)
        chars = read_charset(rec_model.metadata, model_set.charset.path if model_set.charset else None)
        probe = rec_model.run(np.zeros((1, 3, settings.recognize.input_height_px, 64), dtype=np.float32))
        charset = TextRecognizer.charset_for(int(probe.shape[-1]), chars)
        self._recognizer = TextRecognizer(rec_model, charset, settings.recognize)

    @classmethod
    def from_config(
        cls,
        cfg: Config,
        *,
        model_set: ModelSet | None = None,
        intra_op_threads: int = 1,
        verified: Mapping[str, VerifiedFile] | None = None,
    ) -> OcrEngine:
        """An engine with `cfg`'s settings; `model_set` None: the configured files as shipped (no INT8 copy).

        Callers that follow `recognize.precision` pass the set `ocrd.engine.int8.cache.prepare_model_set` returns.
        """
        return cls(model_set or model_set_from_config(cfg), settings_from_config(cfg),
                   intra_op_threads=intra_op_threads, verified=verified)  # fmt: skip

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

    def _upright_lines(
        self, image: np.ndarray, boxes: list[DetectedBox]
    ) -> tuple[list[DetectedBox], list[int], list[np.ndarray]]:
        """Boxes in reading order, the printed row of each, and their line crops, turned upright where needed.

        A page fed upside down or sideways (most of its lines turned, or running up or down the
        page) is read from its own top: rows and their order come from the boxes as they lie on
        the page turned upright, while the boxes keep the coordinates of the page as displayed.
        """
        crops = [crop_quad(image, b.quad) for b in boxes]
        flipped = [False] * len(crops)
        if self._classifier is not None and crops:
            crops, flipped = self._classifier.upright(crops)
        height, width = image.shape[:2]
        turn = page_turn([reads_vertically(b.quad) for b in boxes], flipped)
        quads = [upright_page_points(b.quad, turn, width, height) for b in boxes]
        rows = reading_rows(quads)
        order = [i for row in rows for i in row]
        row_of_box = [number for number, row in enumerate(rows) for _ in row]
        return [boxes[i] for i in order], row_of_box, [crops[i] for i in order]

    def recognizer_inputs(self, image: np.ndarray) -> Iterator[np.ndarray]:
        """The batches `read(image)` would hand to the recognition model (to calibrate a quantized copy)."""
        _, _, crops = self._upright_lines(image, self._detector.detect(image))
        for _, batch in self._recognizer.input_batches(crops):
            yield batch

    def read(self, image: np.ndarray, *, index: int = 0, orientation_applied: int = 0) -> PageResult:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a BGR uint8 image, got shape {image.shape} dtype {image.dtype}")
        height, width = image.shape[:2]
        t0 = time.perf_counter()
        boxes = self._detector.detect(image)
        t1 = time.perf_counter()
        boxes, row_of_box, crops = self._upright_lines(image, boxes)
        t2 = time.perf_counter()
        recognitions = self._recognizer.recognize(crops) if crops else []
        t3 = time.perf_counter()
        kept = [
            (box, row, rec)
            for box, row, rec in zip(boxes, row_of_box, recognitions)
            if rec.text and rec.confidence >= self.settings.min_confidence
        ]
        lines = tuple(
            TextLine(
                text=rec.text,
                confidence=rec.confidence,
                det_score=box.score,
                box=tuple((float(x), float(y)) for x, y in box.quad),  # type: ignore[arg-type]
            )
            for box, _, rec in kept
        )
        return PageResult(
            width=width,
            height=height,
            lines=lines,
            rows=tuple(row for _, row, _ in kept),
            orientation_applied=orientation_applied,
            index=index,
            timings=PageTimings(
                detect_ms=(t1 - t0) * 1000, classify_ms=(t2 - t1) * 1000, recognize_ms=(t3 - t2) * 1000
            ),
        )
