"""Text-line recognition with a CTC model: width-sorted batching, normalisation, greedy CTC decoding."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from ocrd.engine.runtime import OnnxModel


@dataclass(frozen=True, slots=True)
class RecognizeParams:
    input_height_px: int = 48
    max_width_px: int = 3200
    min_width_px: int = 32
    batch_size: int = 6
    # Crops in one batch are stretched to the widest one's width when it is at most
    # this much wider; padding instead changes what the recognizer reads.
    max_stretch: float = 0.0
    mean: float = 0.5
    std: float = 0.5


@dataclass(frozen=True, slots=True)
class Recognition:
    text: str
    confidence: float


def ctc_greedy_decode(probs: np.ndarray, charset: list[str]) -> list[Recognition]:
    """Decode a batch of (T, C) class probabilities: argmax, merge repeats, drop blanks (class 0).

    `charset[i]` is the character of class i + 1. Confidence is the mean
    probability of the kept characters (0 for an empty result).
    """
    results: list[Recognition] = []
    best = probs.argmax(axis=2)
    best_p = probs.max(axis=2)
    for indices, scores in zip(best, best_p):
        keep = indices != 0
        keep[1:] &= indices[1:] != indices[:-1]
        kept = indices[keep]
        text = "".join(charset[i - 1] for i in kept if i - 1 < len(charset))
        confidence = float(scores[keep].mean()) if kept.size else 0.0
        results.append(Recognition(text=text.strip(), confidence=confidence))
    return results


class TextRecognizer:
    """Recognize horizontal line crops, batching crops of similar width to keep padding small."""

    def __init__(self, model: OnnxModel, charset: list[str], params: RecognizeParams):
        self._model = model
        self._params = params
        self._charset = charset

    @classmethod
    def charset_for(cls, model_classes: int, chars: list[str]) -> list[str]:
        """PaddleOCR recognizers append a space class after the dictionary when trained with spaces."""
        if model_classes == len(chars) + 2:
            return [*chars, " "]
        return chars

    def _target_width(self, crop: np.ndarray) -> int:
        h, w = crop.shape[:2]
        width = int(np.ceil(self._params.input_height_px * w / max(1, h)))
        return int(np.clip(width, self._params.min_width_px, self._params.max_width_px))

    def _batches(self, order: list[int], widths: list[int]) -> list[list[int]]:
        """Consecutive width-sorted crops, at most batch_size each, and within max_stretch of each other."""
        p = self._params
        batches: list[list[int]] = []
        for index in order:
            if batches and len(batches[-1]) < p.batch_size and (
                p.max_stretch <= 0 or widths[index] <= widths[batches[-1][0]] * (1 + p.max_stretch)
            ):
                batches[-1].append(index)
            else:
                batches.append([index])
        return batches

    def input_batches(self, crops: list[np.ndarray]) -> Iterator[tuple[list[int], np.ndarray]]:
        """The model inputs for `crops`: (crop indices, normalised NCHW batch), narrowest crops first."""
        p = self._params
        widths = [self._target_width(c) for c in crops]
        order = sorted(range(len(crops)), key=lambda i: widths[i])
        for chunk in self._batches(order, widths):
            batch_w = max(widths[i] for i in chunk)
            if p.max_stretch > 0:
                for i in chunk:
                    widths[i] = batch_w
            batch = np.zeros((len(chunk), 3, p.input_height_px, batch_w), dtype=np.float32)
            for row, index in enumerate(chunk):
                resized = cv2.resize(crops[index], (widths[index], p.input_height_px), interpolation=cv2.INTER_LINEAR)
                batch[row, :, :, : widths[index]] = resized.transpose(2, 0, 1)
            # Normalise in place; padding columns stay 0 as the models were trained.
            for row, index in enumerate(chunk):
                view = batch[row, :, :, : widths[index]]
                view *= 1.0 / (255.0 * p.std)
                view -= p.mean / p.std
            yield chunk, batch

    def recognize(self, crops: list[np.ndarray]) -> list[Recognition]:
        results: list[Recognition | None] = [None] * len(crops)
        for chunk, batch in self.input_batches(crops):
            probs = self._model.run(batch)
            for index, rec in zip(chunk, ctc_greedy_decode(probs, self._charset)):
                results[index] = rec
        return [r for r in results if r is not None]
