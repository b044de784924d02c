"""Text-line recognition with a CTC model: width-sorted batching, normalisation, greedy CTC decoding
with where each character lies along its crop (for word boxes)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
    # Each line crop is cut this fraction of the line's height taller above and below its box: the
    # model reads crops with some room around the letters, and a tight box loses word gaps.
    crop_margin: float = 0.1
    # A batch narrower than this many input heights is padded (not stretched) to it: PP-OCR
    # recognizers are trained on inputs padded to several heights wide, and read a very short crop
    # (a unit "mm", a lone "#", a checkbox's "No") worse when it fills the whole input.
    min_batch_width_h: float = 2.0
    mean: float = 0.5
    std: float = 0.5


@dataclass(frozen=True, slots=True)
class Recognition:
    """One crop's text, its confidence and where each of its characters lies along the crop.

    `text` is normalised: whitespace runs are one space, none at either end. `spans[i]` is the
    (start, end) of `text[i]` as fractions of the crop's width as the recognizer read it (0 its
    left edge, 1 its right), spaces included (a space spans the gap between its neighbours);
    `probs[i]` is that character's probability. Both are empty for an empty text.
    """

    text: str
    confidence: float
    spans: tuple[tuple[float, float], ...] = ()
    probs: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class WordSpan:
    """A word of a `Recognition` (a run between spaces): its text, start and end fraction of the crop's
    width, and confidence (the mean probability of its characters)."""

    text: str
    start: float
    end: float
    confidence: float


def _char_extents(centres: np.ndarray, space: np.ndarray) -> np.ndarray:
    """(start, end) per unit from the centres of their CTC runs, as fractions of the crop's width.

    A CTC peak is narrow: neighbouring letters meet halfway between their centres, and a letter
    at a word's end reaches half the median letter pitch beyond its centre (never past halfway to
    the next word's letter, nor past the crop). Where in a gap CTC emits a space varies, so spaces
    place no letter; a space spans the gap its words leave. A lone letter spans the whole crop.
    """
    letters = np.flatnonzero(~space)
    if letters.size == 1:
        return np.array([[0.0, 1.0]])
    c = centres[letters]
    steps = np.diff(c)
    within = np.diff(letters) == 1  # the next letter follows without a space between
    # Pitch inside words; a line of one-letter words only has steps across a space (about two pitches).
    half_pitch = float(np.median(steps[within] if within.any() else steps / 2)) / 2
    mids = (c[:-1] + c[1:]) / 2
    left, right = c - half_pitch, c + half_pitch
    left[1:] = np.where(within, mids, np.maximum(left[1:], mids))
    right[:-1] = np.where(within, mids, np.minimum(right[:-1], mids))
    out = np.empty((centres.size, 2))
    out[letters, 0], out[letters, 1] = np.clip(left, 0.0, 1.0), np.clip(right, 0.0, 1.0)
    for i in np.flatnonzero(space):  # spaces are single and inside the line (normalised)
        out[i] = out[i - 1, 1], out[i + 1, 0]
    return out


def _normalised_units(
    entries: list[str], centres: list[float], probs: list[float]
) -> tuple[list[str], list[float], list[float]]:
    """The decoded entries with whitespace normalised: a whitespace entry is one space, runs of them
    merge into one (at their mean centre), none at either end; other entries lose inner whitespace."""
    units: list[str] = []
    unit_centres: list[float] = []
    unit_probs: list[float] = []
    run: list[tuple[float, float]] = []  # (centre, probability) of the spaces since the last character
    for entry, centre, prob in zip(entries, centres, probs):
        entry = "".join(entry.split())
        if not entry:
            run.append((centre, prob))
            continue
        if run and units:
            units.append(" ")
            unit_centres.append(float(np.mean([c for c, _ in run])))
            unit_probs.append(float(np.mean([p for _, p in run])))
        run = []
        units.append(entry)
        unit_centres.append(centre)
        unit_probs.append(prob)
    return units, unit_centres, unit_probs


def _positioned(units: list[str], centres: list[float], probs: list[float], confidence: float) -> Recognition:
    """A `Recognition` whose characters carry extents; an entry of several characters shares its extent evenly."""
    if not units:
        return Recognition(text="", confidence=confidence)
    spans: list[tuple[float, float]] = []
    char_probs: list[float] = []
    places = _char_extents(np.asarray(centres, dtype=np.float64), np.array([unit == " " for unit in units]))
    for unit, (start, end), prob in zip(units, places, probs):
        step = (end - start) / len(unit)
        spans += [(float(start + k * step), float(start + (k + 1) * step)) for k in range(len(unit))]
        char_probs += [prob] * len(unit)
    return Recognition(text="".join(units), confidence=confidence, spans=tuple(spans), probs=tuple(char_probs))


def ctc_greedy_decode(
    probs: np.ndarray, charset: list[str], extents: Sequence[float] | None = None
) -> list[Recognition]:
    """Decode a batch of (T, C) class probabilities: argmax, merge repeats, drop blanks (class 0).

    `charset[i]` is the character of class i + 1. Confidence is the mean
    probability of the kept characters (0 for an empty result); a character's
    probability is that of the first frame of its run. Frame t of T covers
    [t, t + 1) / T of the batch input's width; `extents[r]` is the part of it row
    r's crop fills (its resized width over the batch width; default 1), so a
    character's position is the centre of its run over that part (see `Recognition`).
    """
    results: list[Recognition] = []
    best = probs.argmax(axis=2)
    best_p = probs.max(axis=2)
    frames = probs.shape[1]
    for row, (indices, scores) in enumerate(zip(best, best_p)):
        bounds = np.flatnonzero(np.diff(indices)) + 1
        run_start = np.concatenate([[0], bounds]).astype(np.int64)
        run_end = np.concatenate([bounds, [frames]]).astype(np.int64)  # one past the run's last frame
        kept = indices[run_start] != 0
        confidence = float(scores[run_start[kept]].mean()) if kept.any() else 0.0
        extent = float(extents[row]) if extents is not None else 1.0
        entries: list[str] = []
        centres: list[float] = []
        char_probs: list[float] = []
        for start, end in zip(run_start[kept], run_end[kept]):
            cls = int(indices[start])
            if cls - 1 < len(charset):
                entries.append(charset[cls - 1])
                centres.append(float(start + end) / (2 * frames * extent))
                char_probs.append(float(scores[start]))
        results.append(_positioned(*_normalised_units(entries, centres, char_probs), confidence))
    return results


def word_spans(rec: Recognition) -> list[WordSpan]:
    """The words of `rec` (its text split at spaces), each from its first character's start to its last one's end."""
    words: list[WordSpan] = []
    first = 0
    for i in range(len(rec.text) + 1):
        if i == len(rec.text) or rec.text[i] == " ":
            if i > first:
                probs = rec.probs[first:i]
                start, end = rec.spans[first][0], rec.spans[i - 1][1]
                words.append(WordSpan(rec.text[first:i], start, end, sum(probs) / len(probs)))
            first = i + 1
    return words


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
        for chunk, batch, _ in self._prepared_batches(crops):
            yield chunk, batch

    def _prepared_batches(self, crops: list[np.ndarray]) -> Iterator[tuple[list[int], np.ndarray, list[float]]]:
        """`input_batches` plus, per row, the part of the batch width its crop fills (1 when stretched and
        at least `min_batch_width_h` heights wide)."""
        p = self._params
        widths = [self._target_width(c) for c in crops]
        order = sorted(range(len(crops)), key=lambda i: widths[i])
        for chunk in self._batches(order, widths):
            batch_w = max(widths[i] for i in chunk)
            if p.max_stretch > 0:
                for i in chunk:
                    widths[i] = batch_w
            batch_w = max(batch_w, int(round(p.min_batch_width_h * p.input_height_px)))
            batch = np.zeros((len(chunk), 3, p.input_height_px, batch_w), dtype=np.float32)
            for row, index in enumerate(chunk):
                resized = cv2.resize(crops[index], (widths[index], p.input_height_px), interpolation=cv2.INTER_LINEAR)
                batch[row, :, :, : widths[index]] = resized.transpose(2, 0, 1)
            # Normalise in place; padding columns stay 0 as the models were trained.
            for row, index in enumerate(chunk):
                view = batch[row, :, :, : widths[index]]
                view *= 1.0 / (255.0 * p.std)
                view -= p.mean / p.std
            yield chunk, batch, [widths[i] / batch_w for i in chunk]

    def recognize(self, crops: list[np.ndarray]) -> list[Recognition]:
        results: list[Recognition | None] = [None] * len(crops)
        for chunk, batch, extents in self._prepared_batches(crops):
            probs = self._model.run(batch)
            for index, rec in zip(chunk, ctc_greedy_decode(probs, self._charset, extents)):
                results[index] = rec
        return [r for r in results if r is not None]
