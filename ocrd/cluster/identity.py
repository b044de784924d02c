"""What a Dask worker must share with the daemon to take its jobs: the ocrd version, the model files
(sha256 of each file as shipped or configured) and the models' precision; and how two are compared.

Dask's own version check only warns. A worker with other model files or another ocrd would give other
text for the same file than its neighbours, so it is refused (`ocrd.cluster.plugin`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ocrd import __version__
from ocrd.engine.models import file_sha256, model_set_from_config

if TYPE_CHECKING:
    from ocrd.config.schema import Config


@dataclass(frozen=True, slots=True)
class WorkerIdentity:
    ocrd_version: str
    model_set: str
    # (role, sha256) of the files the set is made from: the shipped or configured ones, before any INT8 copy
    # (each host builds its own copy from them and checks it with its agreement gate).
    sources: tuple[tuple[str, str], ...]
    precision: str | None = None  # "rec int8, det int8" once the model set is prepared; None: not yet known

    def as_dict(self) -> dict[str, object]:
        return {"ocrd_version": self.ocrd_version, "model_set": self.model_set, "precision": self.precision,
                "sources": dict(self.sources)}  # fmt: skip


def source_identity(cfg: Config) -> WorkerIdentity:
    """This host's identity before the model set is prepared: version and the source files' hashes.

    Hashes the files as they are (no comparison with the recorded digests, so a different file is reported
    as different rather than as an error); a missing file is named as such.
    """
    model_set = model_set_from_config(cfg)
    sources = []
    for f in model_set.files():
        try:
            digest = file_sha256(f.path)
        except OSError as exc:
            digest = f"unreadable ({exc.strerror or exc}): {f.path}"
        sources.append((f.role, digest))
    return WorkerIdentity(__version__, model_set.name, tuple(sources))


def differences(expected: WorkerIdentity, actual: WorkerIdentity) -> list[str]:
    """How `actual` (a worker) differs from `expected` (the daemon), one phrase each; empty when it matches."""
    found = []
    if actual.ocrd_version != expected.ocrd_version:
        found.append(f"ocrd {actual.ocrd_version}, the daemon runs {expected.ocrd_version}")
    if actual.model_set != expected.model_set:
        found.append(f"model set {actual.model_set}, the daemon's is {expected.model_set}")
    theirs, ours = dict(actual.sources), dict(expected.sources)
    for role in sorted(ours.keys() | theirs.keys()):
        if theirs.get(role) != ours.get(role):
            found.append(f"{role} model sha256 {theirs.get(role, 'missing')}, the daemon's is {ours.get(role, 'none')}")
    if None not in (actual.precision, expected.precision) and actual.precision != expected.precision:
        found.append(f"model precision {actual.precision}, the daemon's is {expected.precision}")
    return found
