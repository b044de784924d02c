"""Unit tests for the pure parts of the HTTP intake (issue 16): the token store (hashes only, mode 0600, revoke,
re-read on change), who a request is, the per-token rate with an injected clock, upload names, problem documents,
the hand-off tickets and the API's output names. No server, no sleeping."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import fields
from pathlib import Path

import pytest

from ocrd.config.load import config_from_mapping
from ocrd.http.access import RateLimiter, authenticate, presented_token
from ocrd.http.documents import content_type, output_files
from ocrd.http.problems import PROBLEM_TYPE, ApiError, problem_response
from ocrd.http.tokens import TOKEN_PREFIX, Role, TokenError, TokenStore, token_hash
from ocrd.inbox.uploads import (
    MAX_NAME_BYTES,
    claim_upload,
    clean_upload_area,
    create_staging_file,
    safe_upload_name,
    upload_root,
)
from ocrd.jobs.rows import JobRow, JobState
from ocrd.service.handoff import Handoff, Refusal, RequeueRequest


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ----------------------------------------------------------------------------- tokens


def test_a_token_is_stored_only_as_its_hash_in_a_0600_file(tmp_path: Path):
    store = TokenStore(tmp_path / "state" / "tokens.json")
    old_umask = os.umask(0o000)  # even a umask that would leave it world-writable must not widen the file
    try:
        secret = store.add("scanner", "upload", ["scans"], known_inboxes=["scans", "polled"])
    finally:
        os.umask(old_umask)
    assert secret.startswith(TOKEN_PREFIX) and len(secret) > len(TOKEN_PREFIX) + 40
    raw = store.path.read_text()
    assert secret not in raw and secret[len(TOKEN_PREFIX):] not in raw
    assert json.loads(raw)["tokens"][0]["sha256"] == hashlib.sha256(secret.encode()).hexdigest() == token_hash(secret)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    found = store.lookup(secret)
    assert found is not None and (found.name, found.role, found.inboxes) == ("scanner", Role.UPLOAD, ("scans",))
    assert store.lookup(secret + "x") is None and store.lookup("") is None
    assert "sha256" not in found.public() and secret not in json.dumps(found.public())


def test_tokens_are_distinct_and_names_roles_and_inboxes_are_checked(tmp_path: Path):
    store = TokenStore(tmp_path / "tokens.json")
    a = store.add("a", "read")
    b = store.add("b", "read")
    assert a != b
    with pytest.raises(TokenError, match="exists"):
        store.add("a", "admin")
    with pytest.raises(TokenError, match="no inbox named nope"):
        store.add("c", "upload", ["nope"], known_inboxes=["scans"])
    with pytest.raises(TokenError, match="limits an upload token"):
        store.add("d", "read", ["scans"], known_inboxes=["scans"])
    with pytest.raises(TokenError, match="token name"):
        store.add("../evil", "read")
    with pytest.raises(ValueError):
        store.add("e", "root")
    assert [t.name for t in store.tokens()] == ["a", "b"]


def test_revoke_takes_effect_for_a_store_that_already_read_the_file(tmp_path: Path):
    path = tmp_path / "tokens.json"
    daemon_view = TokenStore(path)  # the daemon's store; the CLI writes through another one
    cli = TokenStore(path)
    secret = cli.add("scanner", "upload")
    keep = cli.add("admin", "admin")
    assert daemon_view.lookup(secret) is not None
    cli.revoke("scanner")
    assert daemon_view.lookup(secret) is None and daemon_view.lookup(keep).name == "admin"
    with pytest.raises(TokenError, match="no token named"):
        cli.revoke("scanner")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_roles_decide_uploads_and_reads(tmp_path: Path):
    store = TokenStore(tmp_path / "tokens.json")
    for name, role, inboxes in (("all", "upload", []), ("one", "upload", ["scans"]), ("r", "read", []), ("adm", "admin", [])):
        store.add(name, role, inboxes, known_inboxes=["scans", "polled"])
    by = {t.name: t for t in store.tokens()}
    assert by["all"].may_upload_to("polled") and by["one"].may_upload_to("scans")
    assert not by["one"].may_upload_to("polled") and not by["r"].may_upload_to("scans")
    assert by["adm"].may_upload_to("polled")
    assert [by[n].reads_all for n in ("all", "r", "adm")] == [False, True, True]


# ----------------------------------------------------------------------------- who is asking


def test_bearer_wins_over_x_api_token_and_blank_values_count_as_none():
    assert presented_token({"authorization": "Bearer  abc "}) == "abc"
    assert presented_token({"authorization": "bearer abc", "x-api-token": "xyz"}) == "abc"
    assert presented_token({"authorization": "Basic dXNlcg==", "x-api-token": "xyz"}) == "xyz"
    assert presented_token({"authorization": "Bearer ", "x-api-token": "  "}) is None
    assert presented_token({}) is None


def test_authenticate_answers_401_403_and_429_with_their_headers(tmp_path: Path):
    store = TokenStore(tmp_path / "tokens.json")
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=2, burst=1, clock=clock)

    def reason(headers, roles=None) -> tuple[int, str, dict]:
        with pytest.raises(ApiError) as caught:
            authenticate(headers, store, limiter, roles)
        return caught.value.status, caught.value.reason, caught.value.headers

    status, code, headers = reason({})
    assert (status, code) == (401, "no_tokens") and headers["WWW-Authenticate"].startswith("Bearer")
    secret = store.add("reader", "read")
    assert reason({})[:2] == (401, "token_missing")
    status, code, headers = reason({"x-api-token": "ocrd_nope"})
    assert (status, code) == (401, "token_invalid") and 'error="invalid_token"' in headers["WWW-Authenticate"]
    assert authenticate({"x-api-token": secret}, store, limiter).name == "reader"
    status, code, headers = reason({"x-api-token": secret})
    assert (status, code, headers["Retry-After"]) == (429, "rate_limited", "1")
    clock.now += 0.5
    assert reason({"x-api-token": secret}, roles={Role.ADMIN})[:2] == (403, "forbidden_role")


def test_the_rate_limiter_allows_a_burst_then_the_sustained_rate_per_name():
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=4, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.25)
    assert limiter.take("b") == 0.0  # another token has its own bucket
    clock.now += 0.25
    assert limiter.take("a") == 0.0 and limiter.take("a") > 0
    clock.now += 3600  # a long pause refills to the burst, never beyond it
    assert [limiter.take("a") for _ in range(4)][:3] == [0.0, 0.0, 0.0] and limiter.take("a") > 0


# ----------------------------------------------------------------------------- upload names


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("scan.jpg", "scan.jpg"),
        ("../../../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\Scans\\form.png", "form.png"),
        ("a/b\\c.png", "c.png"),
        ("..", "upload.png"),
        ("", "upload.png"),
        (None, "upload.png"),
        ("dir/", "upload.png"),
        ("...hidden.png", "hidden.png"),
        ("\x1b[31mred\x00\n.png", "_[31mred__.png"),
        ("\u202egnp.exe", "_gnp.exe"),
        ("zero\u200bwidth.png", "zero_width.png"),
        ("  spaced.png  ", "spaced.png"),
        ("Rechnung März.pdf", "Rechnung März.pdf"),
    ],
)
def test_an_upload_name_is_a_plain_name(raw, expected):
    assert safe_upload_name(raw, "png") == expected


def test_a_long_name_is_cut_to_the_byte_limit_keeping_its_extension_and_whole_characters():
    name = safe_upload_name("ä" * 300 + ".tiff")
    assert len(name.encode()) <= MAX_NAME_BYTES and name.endswith(".tiff") and set(name[:-5]) == {"ä"}
    assert safe_upload_name("x" * 300).startswith("x") and len(safe_upload_name("x" * 300)) == MAX_NAME_BYTES
    assert safe_upload_name("\udcff.png") == "?.png"  # a lone surrogate cannot be stored as text


def test_a_staging_file_is_claimed_by_one_rename_and_a_crash_leftover_is_cleaned(tmp_path: Path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path, handle = create_staging_file(inbox)
    with handle:
        handle.write(b"data")
    assert path.parent == upload_root(inbox) and path.name.endswith(".part")
    with pytest.raises(ValueError, match="plain name"):
        claim_upload(inbox, path, "01JOB", "../x.png")
    target = claim_upload(inbox, path, "01JOB", "scan.png")
    assert target == inbox / ".ocrd" / "work" / "01JOB" / "scan.png" and target.read_bytes() == b"data"
    assert not path.exists()
    leftover, handle = create_staging_file(inbox)
    handle.close()
    assert clean_upload_area(inbox) == 1 and not leftover.exists() and clean_upload_area(inbox) == 0


# ----------------------------------------------------------------------------- problems


def test_a_problem_document_follows_rfc_9457_and_carries_the_reason_code():
    error = ApiError(503, "queue_full", "too many jobs wait", headers={"Retry-After": "5"}, extra={"queued": 9})
    response = problem_response(error, instance="/api/v1/jobs")
    assert response.status_code == 503 and response.media_type == PROBLEM_TYPE
    assert response.headers["content-type"] == PROBLEM_TYPE
    assert response.headers["retry-after"] == "5" and response.headers["cache-control"] == "no-store"
    body = json.loads(response.body)
    assert body == {"type": "urn:ocrd:problem:queue_full", "title": "Service Unavailable", "status": 503,
                    "reason": "queue_full", "detail": "too many jobs wait", "instance": "/api/v1/jobs", "queued": 9}  # fmt: skip
    assert json.loads(problem_response(ApiError(507, "disk_full", "ü")).body)["title"] == "Insufficient Storage"


# ----------------------------------------------------------------------------- hand-off


def test_a_ticket_is_either_taken_by_the_loop_or_abandoned_never_both():
    woken = []
    handoff = Handoff(wake=lambda: woken.append(1))
    first = handoff.submit(RequeueRequest("01A"))
    second = handoff.submit(RequeueRequest("01B"))
    assert woken == [1, 1] and handoff.pending() == 2
    assert second.abandon()  # the requester gave up before the loop came round
    tickets = handoff.take_all()
    assert handoff.pending() == 0 and [t.take() for t in tickets] == [True, False]
    assert not first.abandon()  # too late: the loop has it
    called = []
    first.on_answer(lambda: called.append("cb"))
    first.answer("01A")
    assert first.wait(0) and first.result == "01A" and called == ["cb"]
    first.on_answer(lambda: called.append("late"))
    assert called == ["cb", "late"]


def test_a_closed_handoff_refuses_at_once_and_returns_what_was_queued():
    handoff = Handoff()
    queued = handoff.submit(RequeueRequest("01A"))
    refusal = Refusal("stopping", "the daemon is stopping")
    assert handoff.close(refusal) == [queued]
    late = handoff.submit(RequeueRequest("01B"))
    assert late.wait(0) and late.result == refusal and handoff.pending() == 0


# ----------------------------------------------------------------------------- output names


def _row(**given) -> JobRow:
    empty = {f.name: None for f in fields(JobRow)}
    base = {**empty, "id": "01J", "inbox": "scans", "rel_path": "inv.png", "size_bytes": 1, "attempts": 1,
            "created_at": "2026-01-01T00:00:00Z", "outputs": (), "work_path": ""}  # fmt: skip
    return JobRow(**{**base, **given})


def test_outputs_answer_to_stable_names_and_only_inside_the_outbox(tmp_path: Path):
    cfg = config_from_mapping({}, tmp_path)
    out = cfg.outbox / "scans"
    out.mkdir(parents=True)
    names = ["inv.json", "inv.txt", "inv.p001.vis.jpg", "inv.p002.vis.jpg", "inv.pdf", "inv.hocr", "other.txt"]
    for name in names:
        (out / name).write_text(name)
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("x")
    (out / "inv.alto.xml").symlink_to(outside)  # a link out of the outbox is not served
    recorded = tuple(str(out / n) for n in names) + (str(out / "inv.alto.xml"), str(out / "inv.gone.txt"))
    row = _row(state=JobState.DONE, stem="inv", outputs=recorded)
    found = output_files(row, cfg)
    assert sorted(found) == ["result.hocr", "result.json", "result.pdf", "result.txt", "vis.jpg", "vis.p001.jpg", "vis.p002.jpg"]
    assert found["vis.jpg"] == found["vis.p001.jpg"] and found["result.pdf"].name == "inv.pdf"
    assert content_type(found["result.pdf"]) == "application/pdf"
    assert content_type(found["result.hocr"]) == "application/octet-stream"  # served as a download, never as HTML
