"""API tokens: create, list, revoke and look up; only each token's SHA-256 is stored, in `state_dir/tokens.json` (mode 0600).

A token is 256 random bits (`ocrd_` + URL-safe base64), shown once when it is
made. SHA-256 without salt or stretching is enough for secrets of that
strength (nobody can guess one to match a hash), and it keeps each request's
check cheap. A presented token is hashed and compared with every stored hash
by `hmac.compare_digest`, so neither the match nor its position leaks
through timing. The daemon re-reads the file when it changes, so `ocrd token
add` and `revoke` take effect without a restart. Never log a token.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from ocrd.config.schema import Config
from ocrd.durable import fsync_dir
from ocrd.errors import ExitCode, OcrdError

TOKENS_FILE_NAME = "tokens.json"
TOKEN_PREFIX = "ocrd_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class Role(StrEnum):
    UPLOAD = "upload"  # post to its inboxes (all when none are named) and read its own jobs
    READ = "read"  # read every job and result
    ADMIN = "admin"  # everything, requeue included


class TokenError(OcrdError):
    """A token command that cannot be carried out (a name taken or unknown, an inbox not configured)."""

    exit_code = ExitCode.SOME_FAILED


@dataclass(frozen=True, slots=True)
class Token:
    """A stored token: who it is for and what it may do; `sha256` is the hash of the secret, never the secret."""

    name: str
    role: Role
    inboxes: tuple[str, ...]  # for `upload`: the inboxes it may post to; empty means all
    created_at: str
    sha256: str

    def may_upload_to(self, inbox: str) -> bool:
        if self.role is Role.ADMIN:
            return True
        return self.role is Role.UPLOAD and (not self.inboxes or inbox in self.inboxes)

    @property
    def reads_all(self) -> bool:
        """read and admin see every job; upload only the jobs it posted."""
        return self.role in (Role.READ, Role.ADMIN)

    def public(self) -> dict[str, object]:
        return {"name": self.name, "role": str(self.role), "inboxes": list(self.inboxes), "created_at": self.created_at}


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class TokenStore:
    """The token file of one state directory; thread-safe for lookups, and for writers across processes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None  # (inode, size, mtime_ns) of the file last read
        self._tokens: tuple[Token, ...] = ()

    @classmethod
    def for_config(cls, cfg: Config) -> TokenStore:
        return cls(cfg.state_dir / TOKENS_FILE_NAME)

    # ----------------------------------------------------------------- reading

    def _read_file(self) -> tuple[Token, ...]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return ()
        except (OSError, ValueError) as exc:
            raise TokenError(f"{self.path}: cannot read the token file: {exc}") from None
        tokens = []
        for item in raw.get("tokens", []):
            tokens.append(Token(name=item["name"], role=Role(item["role"]), inboxes=tuple(item.get("inboxes", ())),
                                created_at=item["created_at"], sha256=item["sha256"]))  # fmt: skip
        return tuple(tokens)

    def tokens(self) -> tuple[Token, ...]:
        """Every stored token, re-read when the file has changed since the last call."""
        try:
            st = os.stat(self.path)
            seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            seen = None
        with self._lock:
            if seen != self._seen or seen is None:
                self._tokens = self._read_file() if seen is not None else ()
                self._seen = seen
            return self._tokens

    def lookup(self, secret: str) -> Token | None:
        """The token whose hash matches `secret`, compared in constant time against every stored hash."""
        presented = token_hash(secret)
        found = None
        for token in self.tokens():
            if hmac.compare_digest(presented, token.sha256) and found is None:
                found = token  # no early exit: every hash is compared whatever matched
        return found

    # ----------------------------------------------------------------- writing

    def add(self, name: str, role: Role | str, inboxes: Iterable[str] = (), *, known_inboxes: Iterable[str] = ()) -> str:
        """Store a new token and return its secret (the only time anyone sees it)."""
        role = Role(role)
        inboxes = tuple(dict.fromkeys(inboxes))
        if not _NAME.fullmatch(name):
            raise TokenError(f"token name {name!r}: use 1-64 letters, digits, '_', '.' or '-'")
        unknown = sorted(set(inboxes) - set(known_inboxes))
        if unknown:
            raise TokenError(f"no inbox named {', '.join(unknown)} in the config")
        if inboxes and role is not Role.UPLOAD:
            raise TokenError(f"--inbox limits an upload token; a {role} token reads every inbox")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        with self._file_lock():
            tokens = list(self._read_file())
            if any(t.name == name for t in tokens):
                raise TokenError(f"a token named {name!r} exists; revoke it first (`ocrd token revoke {name}`)")
            tokens.append(Token(name, role, inboxes, created, token_hash(secret)))
            self._write(tokens)
        return secret

    def revoke(self, name: str) -> None:
        with self._file_lock():
            tokens = list(self._read_file())
            kept = [t for t in tokens if t.name != name]
            if len(kept) == len(tokens):
                raise TokenError(f"no token named {name!r}")
            self._write(kept)

    def _file_lock(self):  # -> a context manager holding an exclusive lock across processes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return _FileLock(self.path.with_name(self.path.name + ".lock"))

    def _write(self, tokens: list[Token]) -> None:
        doc = {"version": 1, "tokens": [{"name": t.name, "role": str(t.role), "inboxes": list(t.inboxes),
                                         "created_at": t.created_at, "sha256": t.sha256} for t in tokens]}  # fmt: skip
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask: the hashes are nobody else's business
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(doc, handle, indent=1)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(self.path.parent)


class _FileLock:
    def __init__(self, path: Path):
        self.path = path
        self._fd = -1

    def __enter__(self) -> _FileLock:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
