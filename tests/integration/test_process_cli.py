"""`ocrd process` and `ocrd models` as real subprocesses: outputs, mirrored paths, schema, exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import jsonschema
import pytest

from ocrd.outputs.writers import load_result_schema
from tests.fonts import CJK_FONT, render_lines

# The CJK subset font ships with the tests, so these renders never need a system font.
TOP_TEXT = "我是中国人"
SUB_TEXT = "正品促销"

CONFIG_YAML = "workers: {count: 1, intra_op_threads: 1}\n"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


def run_ocrd(*args: str, cwd: Path, timeout_s: float = 240) -> Run:
    env = {k: v for k, v in os.environ.items() if k != "OCRD_CONFIG"}
    proc = subprocess.run(
        [sys.executable, "-m", "ocrd", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def write_render(path: Path, text: str) -> None:
    image, _ = render_lines([text], CJK_FONT, size_px=36)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("process")
    (root / "config.yaml").write_text(CONFIG_YAML, encoding="utf-8")
    inputs = root / "in"
    write_render(inputs / "top.png", TOP_TEXT)
    write_render(inputs / "sub" / "deeper.jpg", SUB_TEXT)
    (inputs / "notes.jpg").write_text("this is not a JPEG, just text with the wrong name\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def mixed_run(workdir) -> Run:
    return run_ocrd("process", str(workdir / "in"), "-o", str(workdir / "out"), "-c", str(workdir / "config.yaml"), cwd=workdir)


def test_mixed_batch_exits_1(mixed_run):
    assert mixed_run.code == 1, mixed_run.stderr


def test_failure_line_names_the_file_and_reason_code(mixed_run):
    failed = [line for line in mixed_run.stderr.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1, mixed_run.stderr
    assert re.search(r"notes\.jpg: unsupported_format: \S", failed[0]), failed[0]
    assert "2 of 3 file(s) processed" in mixed_run.stdout
    assert "failed: unsupported_format 1" in mixed_run.stdout


@pytest.mark.parametrize(("rel_stem", "text", "fmt"), [("top", TOP_TEXT, "png"), ("sub/deeper", SUB_TEXT, "jpeg")])
def test_outputs_mirror_the_input_tree(workdir, mixed_run, rel_stem, text, fmt):
    out = workdir / "out"
    json_path = out / f"{rel_stem}.json"
    txt_path = out / f"{rel_stem}.txt"
    vis_path = out / f"{rel_stem}.vis.jpg"
    for path in (json_path, txt_path, vis_path):
        assert path.is_file(), f"missing {path}; stderr: {mixed_run.stderr}"

    result = json.loads(json_path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(load_result_schema()).validate(result)
    assert result["schema"] == "ocrd/result/v1"
    assert result["source"]["rel_path"] == Path(rel_stem).with_suffix(".png" if fmt == "png" else ".jpg").as_posix()
    assert result["source"]["format"] == fmt
    assert result["source"]["pages"] == 1
    (page,) = result["pages"]
    assert [line["text"] for line in page["lines"]] == [text]
    assert page["text"] == text
    assert txt_path.read_text(encoding="utf-8") == text + "\n"

    vis = cv2.imread(str(vis_path))
    assert vis is not None and vis.shape[:2] == (page["height"], page["width"])


def test_nothing_written_for_the_bad_file(workdir, mixed_run):
    out = workdir / "out"
    assert not list(out.glob("notes*"))
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted(
        ["top.json", "top.txt", "top.vis.jpg", "top.pdf", "sub/deeper.json", "sub/deeper.txt", "sub/deeper.vis.jpg",
         "sub/deeper.pdf"]
    )


def test_all_good_batch_exits_0(workdir, mixed_run):
    (workdir / "in" / "notes.jpg").unlink()
    run = run_ocrd("process", str(workdir / "in"), "-o", str(workdir / "out2"), "-c", str(workdir / "config.yaml"), cwd=workdir)
    assert run.code == 0, run.stderr
    assert "FAILED" not in run.stderr
    assert "2 of 2 file(s) processed" in run.stdout
    assert json.loads((workdir / "out2" / "sub" / "deeper.json").read_text(encoding="utf-8"))["pages"][0]["text"] == SUB_TEXT


def test_a_name_that_is_not_utf8_is_read_and_written_as_text(tmp_path):
    (tmp_path / "config.yaml").write_text(CONFIG_YAML, encoding="utf-8")
    write_render(tmp_path / "in" / "plain.png", TOP_TEXT)
    # Renamed, not written under that name: cv2.imwrite crashes on a path that is not UTF-8.
    os.rename(tmp_path / "in" / "plain.png", tmp_path / "in" / os.fsdecode(b"M\xfcller.png"))  # a Latin-1 name
    run = run_ocrd("process", "-v", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-c", str(tmp_path / "config.yaml"),
                   cwd=tmp_path)  # fmt: skip
    assert run.code == 0, run.stderr
    assert "ok " in run.stdout and "M\\xfcller.png" in run.stdout  # the exact name, escaped
    result = json.loads((tmp_path / "out" / "M\ufffdller.json").read_text(encoding="utf-8"))
    assert result["source"]["rel_path"] == "M\ufffdller.png" and result["pages"][0]["text"] == TOP_TEXT


def test_an_encrypted_pdf_is_done_without_its_pdf_and_the_command_says_why(tmp_path):
    import pikepdf

    (tmp_path / "config.yaml").write_text(CONFIG_YAML, encoding="utf-8")
    image, _ = render_lines([TOP_TEXT], CJK_FONT, size_px=36)
    ok, png = cv2.imencode(".png", image)
    assert ok
    doc = pikepdf.Pdf.open(_png_as_pdf(png.tobytes()))
    (tmp_path / "in").mkdir()
    doc.save(tmp_path / "in" / "locked.pdf", encryption=pikepdf.Encryption(owner="owner-secret", user=""))
    run = run_ocrd("process", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-c", str(tmp_path / "config.yaml"),
                   cwd=tmp_path)  # fmt: skip
    assert run.code == 0, run.stderr
    assert re.search(r"^note .*locked\.pdf: pdf_encrypted: .*encrypted", run.stderr, re.M), run.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["locked.json", "locked.txt", "locked.vis.jpg"]


def _png_as_pdf(png: bytes):  # -> io.BytesIO
    """A one-page PDF showing `png` (through Pillow, which writes image PDFs)."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(out, "PDF", resolution=100)
    out.seek(0)
    return out


# ---------------------------------------------------------------- models and config exit codes


def test_models_verifies_and_exits_0(workdir):
    run = run_ocrd("models", "-c", str(workdir / "config.yaml"), cwd=workdir)
    assert run.code == 0, run.stderr
    assert run.stdout.count(" ok ") >= 3
    assert "PP-OCRv6_det_small.onnx" in run.stdout


def test_models_with_missing_detector_exits_69(tmp_path):
    missing = tmp_path / "no-such-det.onnx"
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_YAML + f"detect: {{model: {json.dumps(str(missing))}}}\n", encoding="utf-8")
    run = run_ocrd("models", "-c", str(config), cwd=tmp_path)
    assert run.code == 69, (run.stdout, run.stderr)
    assert "no-such-det.onnx" in run.stderr


def test_bad_config_exits_78_naming_the_key(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_YAML + "detect: {box_thresh: 1.7}\n", encoding="utf-8")
    image = tmp_path / "x.png"
    write_render(image, TOP_TEXT)
    for args in (("process", str(image), "-o", str(tmp_path / "out")), ("models",)):
        run = run_ocrd(*args, "-c", str(config), cwd=tmp_path)
        assert run.code == 78, (args, run.stderr)
        assert "detect.box_thresh" in run.stderr
        assert "1.7" in run.stderr
    assert not (tmp_path / "out").exists()
