"""What identifies an INT8 build of a model (recognizer or detector): the recipe version, the cached file's name, its record, the build error.

Shared by the cache (which looks files up and verifies them) and the build (which writes them), so
neither imports the other for these names.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ocrd.errors import ModelError

if TYPE_CHECKING:
    from ocrd.engine.models import ModelFile

# Part of the cached file's name, per model role: change it whenever the calibration pages, their variants
# or the quantization settings of that role change, so that no file built the old way is used again.
RECIPES = {"rec": "qdq-conv-s8u8-pc-sqnr40-r3", "det": "qdq-conv-s8u8-pc-sqnr30-det-r1"}
RECIPE = RECIPES["rec"]
QUANTIZED_ROLES = tuple(RECIPES)


class Int8BuildError(ModelError):
    """The INT8 copy could not be built; the caller falls back to the FP32 model."""


def cached_path(cache_dir: Path, source: ModelFile, source_sha256: str) -> Path:
    return cache_dir / f"{source.path.stem}.{source_sha256[:16]}.{RECIPES[source.role]}.int8.onnx"


def record_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".json")
