"""Unit tests of ocrd.outputs.writers: atomic writes, naming, the written set, the JSON schema, the visualization."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest

import ocrd.outputs.writers as outputs
from ocrd.outputs.writers import (
    atomic_write_bytes,
    atomic_write_text,
    choose_stem,
    load_result_schema,
    output_paths,
    result_json_text,
    write_outputs,
)
from ocrd.engine.results import DocumentResult, PageResult, PageTimings, SourceInfo, TextLine, block_around


@dataclass(frozen=True)
class FakeOutputsConfig:
    json: bool = True
    text: bool = True
    visualization: bool = True
    vis_format: str = "jpg"
    vis_max_side_px: int = 800
    pdf: bool = False  # the PDF, hOCR and ALTO have their own tests (test_pdf_*.py, test_alto_hocr.py)
    pdfa: bool = False
    pdf_existing_text: str = "skip"
    hocr: bool = False
    alto: bool = False


CFG = FakeOutputsConfig()
SHA = "ab" * 32


def make_line(text: str, x: float, y: float, w: float, h: float, conf: float = 0.9) -> TextLine:
    return TextLine(text=text, confidence=conf, det_score=0.8, box=((x, y), (x + w, y), (x + w, y + h), (x, y + h)))


def make_page(index: int, width: int = 1200, height: int = 900, texts: tuple[str, ...] = ("Invoice 42", "Grüße €")) -> PageResult:
    lines = tuple(make_line(t, 100 + 40 * i, 100 + 150 * i, 600, 80) for i, t in enumerate(texts))
    return PageResult(width=width, height=height, lines=lines, timings=PageTimings(1.0, 2.0, 3.0), index=index)


def make_doc(page_count: int = 1, width: int = 1200, height: int = 900) -> DocumentResult:
    pages = tuple(make_page(i, width, height, texts=(f"page {i + 1} line one", "Grüße €")) for i in range(page_count))
    return DocumentResult(
        job_id="01JOBID",
        created_at="2024-05-01T12:00:00Z",
        source=SourceInfo(inbox="scans", rel_path="a/scan.tif", sha256=SHA, bytes=1234, format="tiff", pages=page_count),
        engine={
            "ocrd_version": "0.1.0",
            "model_set": "ppocr-v4-en",
            "models": {"det": {"file": "det.onnx", "sha256": SHA}, "rec": {"file": "rec.onnx", "sha256": SHA}},
            "params": {"det_limit_side_px": 960, "box_thresh": 0.5, "nested": {"anything": [1, 2]}},
        },
        pages=pages,
        decode_ms=4.0,
        total_ms=20.0,
    )


def blank_pages(doc: DocumentResult) -> list[np.ndarray]:
    return [np.full((p.height, p.width, 3), 255, np.uint8) for p in doc.pages]


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


# ---------------------------------------------------------------- atomic writes


def test_atomic_write_leaves_only_the_final_file(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert listing(tmp_path) == ["a.txt"]


def test_atomic_write_uses_umask_mode_not_private_0600(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "x")
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


def test_failed_replace_removes_temp_and_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a.json"
    target.write_text("old")
    seen_temps: list[str] = []

    def failing_replace(src: os.PathLike[str], dst: os.PathLike[str]) -> None:
        seen_temps.append(Path(src).name)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space"):
        atomic_write_text(target, "new")
    assert seen_temps and seen_temps[0].startswith(".a.json.") and seen_temps[0].endswith(".tmp")
    assert listing(tmp_path) == ["a.json"]
    assert target.read_text() == "old"


def test_failed_fsync_removes_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(outputs.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="Input/output"):
        atomic_write_bytes(tmp_path / "b.bin", b"data")
    assert listing(tmp_path) == []


def test_atomic_write_into_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(tmp_path / "missing" / "a.txt", b"x")


def test_atomic_write_with_very_long_name(tmp_path: Path) -> None:
    target = tmp_path / ("ü" * 120 + ".json")  # 245 bytes: temp affixes must not overflow NAME_MAX
    atomic_write_text(target, "{}")
    assert listing(tmp_path) == [target.name]


# ---------------------------------------------------------------- naming


def test_output_paths_single_page(tmp_path: Path) -> None:
    assert [p.name for p in output_paths(tmp_path, "scan", 1, CFG)] == ["scan.json", "scan.txt", "scan.vis.jpg"]
    assert all(p.parent == tmp_path for p in output_paths(tmp_path, "scan", 1, CFG))


def test_output_paths_three_pages_png(tmp_path: Path) -> None:
    cfg = replace(CFG, vis_format="png")
    assert [p.name for p in output_paths(tmp_path, "scan", 3, cfg)] == [
        "scan.json",
        "scan.txt",
        "scan.p001.vis.png",
        "scan.p002.vis.png",
        "scan.p003.vis.png",
    ]


def test_output_paths_honour_disabled_outputs(tmp_path: Path) -> None:
    cfg = replace(CFG, json=False, visualization=False)
    assert [p.name for p in output_paths(tmp_path, "scan", 2, cfg)] == ["scan.txt"]


def test_choose_stem_free(tmp_path: Path) -> None:
    assert choose_stem(tmp_path, "scan", 1, CFG) == "scan"
    assert choose_stem(tmp_path / "not-yet-created", "scan", 1, CFG) == "scan"


def test_choose_stem_skips_foreign_results(tmp_path: Path) -> None:
    (tmp_path / "scan.json").write_text('{"job_id": "other"}')
    (tmp_path / "scan~1.txt").write_text("someone else")
    (tmp_path / "scan~2.vis.jpg").write_bytes(b"x")
    assert choose_stem(tmp_path, "scan", 1, CFG) == "scan~3"
    assert choose_stem(tmp_path, "scan", 1, CFG, is_ours=lambda p: False) == "scan~3"


def test_choose_stem_checks_every_page_visualization(tmp_path: Path) -> None:
    (tmp_path / "scan.p003.vis.jpg").write_bytes(b"x")
    assert choose_stem(tmp_path, "scan", 2, CFG) == "scan"
    assert choose_stem(tmp_path, "scan", 3, CFG) == "scan~1"


def test_choose_stem_dangling_symlink_counts_as_taken(tmp_path: Path) -> None:
    (tmp_path / "scan.txt").symlink_to(tmp_path / "nowhere")
    assert choose_stem(tmp_path, "scan", 1, CFG) == "scan~1"


def test_choose_stem_reuses_own_stem_for_idempotent_rewrite(tmp_path: Path) -> None:
    doc = make_doc()
    (tmp_path / "scan.json").write_text('{"job_id": "other"}')
    write_outputs(doc, blank_pages(doc), tmp_path, "scan~1", CFG)

    def is_ours(json_path: Path) -> bool:
        return json.loads(json_path.read_text())["job_id"] == doc.job_id

    seen: list[Path] = []

    def recording_is_ours(json_path: Path) -> bool:
        seen.append(json_path)
        return is_ours(json_path)

    stem = choose_stem(tmp_path, "scan", 1, CFG, is_ours=recording_is_ours)
    assert stem == "scan~1"
    assert seen == [tmp_path / "scan.json", tmp_path / "scan~1.json"]
    before = {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)}
    write_outputs(doc, blank_pages(doc), tmp_path, stem, CFG)
    assert {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)} == before


def test_choose_stem_does_not_claim_debris_without_json(tmp_path: Path) -> None:
    # An interrupted write leaves a visualization but no JSON: nobody can prove it is ours.
    (tmp_path / "scan.vis.jpg").write_bytes(b"x")
    assert choose_stem(tmp_path, "scan", 1, CFG, is_ours=lambda p: True) == "scan~1"


# ---------------------------------------------------------------- write_outputs


def test_write_outputs_single_page_set(tmp_path: Path) -> None:
    doc = make_doc(1)
    out_dir = tmp_path / "outbox" / "scans" / "a"
    written = write_outputs(doc, blank_pages(doc), out_dir, "scan", CFG)
    assert [p.name for p in written] == ["scan.vis.jpg", "scan.txt", "scan.json"]  # JSON last marks completion
    assert sorted(written) == sorted(output_paths(out_dir, "scan", 1, CFG))
    assert listing(out_dir) == ["scan.json", "scan.txt", "scan.vis.jpg"]
    data = json.loads((out_dir / "scan.json").read_text(encoding="utf-8"))
    assert data == doc.to_dict()
    jsonschema.validate(data, load_result_schema(), cls=jsonschema.Draft202012Validator)
    assert (out_dir / "scan.txt").read_text(encoding="utf-8") == "page 1 line one\nGrüße €\n"


def test_write_outputs_json_is_utf8_and_readable(tmp_path: Path) -> None:
    doc = make_doc(1)
    write_outputs(doc, [], tmp_path, "scan", replace(CFG, visualization=False))
    raw = (tmp_path / "scan.json").read_text(encoding="utf-8")
    assert "Grüße €" in raw  # ensure_ascii=False
    assert raw.endswith("}\n")
    line_rows = [row for row in raw.splitlines() if '"text": "Grüße €", "confidence"' in row]
    assert len(line_rows) == 1 and '"box": [[' in line_rows[0]  # one text line per JSON line


def test_write_outputs_multi_page(tmp_path: Path) -> None:
    doc = make_doc(3)
    written = write_outputs(doc, blank_pages(doc), tmp_path, "scan", CFG)
    assert [p.name for p in written] == [
        "scan.p001.vis.jpg",
        "scan.p002.vis.jpg",
        "scan.p003.vis.jpg",
        "scan.txt",
        "scan.json",
    ]
    text = (tmp_path / "scan.txt").read_text(encoding="utf-8")
    assert text.split("\f") == ["page 1 line one\nGrüße €", "page 2 line one\nGrüße €", "page 3 line one\nGrüße €\n"]
    jsonschema.validate(json.loads((tmp_path / "scan.json").read_text()), load_result_schema())


def test_write_outputs_vis_dims_bounded(tmp_path: Path) -> None:
    doc = make_doc(1, width=3000, height=1500)
    cfg = replace(CFG, vis_format="png", vis_max_side_px=640)
    (vis_path,) = [p for p in write_outputs(doc, blank_pages(doc), tmp_path, "big", cfg) if ".vis." in p.name]
    assert vis_path.name == "big.vis.png"
    vis = cv2.imdecode(np.frombuffer(vis_path.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
    assert vis.shape == (320, 640, 3)


def test_write_outputs_small_page_is_not_upscaled(tmp_path: Path) -> None:
    doc = make_doc(1, width=300, height=200)
    write_outputs(doc, blank_pages(doc), tmp_path, "small", CFG)
    vis = cv2.imdecode(np.fromfile(tmp_path / "small.vis.jpg", np.uint8), cv2.IMREAD_COLOR)
    assert vis.shape == (200, 300, 3)


def test_write_outputs_only_enabled_outputs(tmp_path: Path) -> None:
    doc = make_doc(2)
    written = write_outputs(doc, [], tmp_path, "scan", replace(CFG, visualization=False, json=False))
    assert [p.name for p in written] == ["scan.txt"]
    assert listing(tmp_path) == ["scan.txt"]


def test_write_outputs_page_image_count_mismatch_writes_nothing(tmp_path: Path) -> None:
    doc = make_doc(2)
    with pytest.raises(ValueError, match="page images"):
        write_outputs(doc, blank_pages(doc)[:1], tmp_path / "out", "scan", CFG)
    assert not (tmp_path / "out").exists()


def test_write_outputs_failure_leaves_no_json_and_no_temps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = make_doc(1)
    real_replace = os.replace

    def replace_failing_for_json(src: os.PathLike[str], dst: os.PathLike[str]) -> None:
        if str(dst).endswith(".json"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", replace_failing_for_json)
    with pytest.raises(OSError):
        write_outputs(doc, blank_pages(doc), tmp_path, "scan", CFG)
    assert listing(tmp_path) == []  # no JSON, no temp, and no orphaned txt/vis either


def test_nan_confidence_is_refused_not_written_as_invalid_json(tmp_path: Path) -> None:
    doc = make_doc(1)
    bad_page = replace(doc.pages[0], lines=(replace(doc.pages[0].lines[0], confidence=float("nan")),))
    with pytest.raises(ValueError):
        write_outputs(replace(doc, pages=(bad_page,)), [], tmp_path, "scan", replace(CFG, visualization=False))
    assert listing(tmp_path) == []


# ---------------------------------------------------------------- schema


def test_schema_is_valid_draft_2020_12() -> None:
    schema = load_result_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema"]["const"] == "ocrd/result/v1"


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda d: d.pop("timings_ms"), "missing required field"),
        (lambda d: d.update(extra=1), "unknown top-level field"),
        (lambda d: d["pages"][0]["lines"][0].update(confidence=1.5), "confidence above 1"),
        (lambda d: d["pages"][0]["lines"][0]["box"].pop(), "box with three points"),
        (lambda d: d["pages"][0]["lines"][0]["box"][0].append(1.0), "point with three numbers"),
        (lambda d: d["pages"][0]["lines"][0].update(angle=0), "unknown line field"),
        (lambda d: d["source"].update(sha256="xyz"), "malformed sha256"),
        (lambda d: d["engine"]["models"].update(extra={"file": "x", "sha256": SHA}), "unknown model role"),
        (lambda d: d["pages"][0].update(orientation_applied=45), "orientation not a quarter turn"),
        (lambda d: d.update(schema="ocrd/result/v2"), "wrong schema id"),
    ],
)
def test_schema_rejects(mutate, why: str) -> None:
    data = json.loads(result_json_text(make_doc(1).to_dict()))
    mutate(data)
    validator = jsonschema.Draft202012Validator(load_result_schema())
    assert not validator.is_valid(data), why


def test_schema_accepts_null_inbox_and_empty_page() -> None:
    doc = make_doc(1)
    doc = replace(doc, source=replace(doc.source, inbox=None), pages=(replace(doc.pages[0], lines=()),))
    jsonschema.validate(doc.to_dict(), load_result_schema(), cls=jsonschema.Draft202012Validator)


# ---------------------------------------------------------------- visualization


def test_encoded_visualization_has_no_exif() -> None:
    data = outputs.encode_image(np.zeros((10, 10, 3), np.uint8), "jpg")
    assert data[:2] == b"\xff\xd8"
    assert b"Exif" not in data


def test_real_outputs_config_fits(tmp_path: Path) -> None:
    from ocrd.config.schema import OutputsConfig  # imported here so config work in progress fails only this test

    cfg = OutputsConfig()
    doc = make_doc(2, width=400, height=300)
    written = write_outputs(doc, blank_pages(doc), tmp_path, "scan", cfg)
    assert sorted(written) == sorted(output_paths(tmp_path, "scan", 2, cfg))



# ---------------------------------------------------------------- page text


def test_page_text_joins_the_lines_of_a_row_and_separates_blocks_by_a_blank_line():
    lines = (make_line("TOTAL", 20, 100, 80, 20), make_line("12.50", 400, 100, 60, 20), make_line("Thank you", 20, 150, 120, 20),
             make_line("Page 1", 20, 190, 60, 10))  # fmt: skip
    blocks = (block_around(((0, 1), (2,)), lines), block_around(((3,),), lines))
    page = PageResult(width=500, height=200, lines=lines, blocks=blocks)
    assert page.text == "TOTAL 12.50\nThank you\n\nPage 1"
    page_dict = page.to_dict()
    assert [line["text"] for line in page_dict["lines"]] == ["TOTAL", "12.50", "Thank you", "Page 1"]  # boxes stay separate
    assert page_dict["blocks"] == [
        {"box": [[20.0, 100.0], [460.0, 100.0], [460.0, 170.0], [20.0, 170.0]], "lines": [0, 1, 2]},
        {"box": [[20.0, 190.0], [80.0, 190.0], [80.0, 200.0], [20.0, 200.0]], "lines": [3]},
    ]


def test_page_text_without_rows_puts_each_line_on_its_own():
    page = PageResult(width=500, height=200, lines=(make_line("a", 0, 0, 10, 10), make_line("b", 20, 0, 10, 10)))
    assert page.text == "a\nb"
