"""The web page in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright) against a running daemon:
sign in, upload by file picker and by drag and drop, watch a job reach done and its text appear (as text),
requeue a quarantined file; screenshots at desktop and phone width go to /tmp for people to look at.

Skips with the reason when Chromium or Playwright is missing; `.ci/run` installs Chromium. Nothing is
downloaded: `playwright install` is never run, the browser is launched by path with its network chatter off.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.system.api_client import add_token, distinct_png, start_with_http
from tests.system.harness import DaemonHarness, encode_image, render_text_image

CHROMIUM = os.environ.get("OCRD_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
SCREENSHOTS = Path(os.environ.get("OCRD_SCREENSHOTS", "/tmp"))
JOB_TIMEOUT_MS = 90_000

sync_api = pytest.importorskip("playwright.sync_api", reason="the `playwright` package is not installed (test extra)")
if not shutil.which(CHROMIUM) and not Path(CHROMIUM).is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)", allow_module_level=True)


@pytest.fixture
def browser_page():
    with sync_api.sync_playwright() as p, tempfile.TemporaryDirectory(prefix="ocrd-chromium-") as profile:
        context = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                       headless=True, viewport={"width": 1280, "height": 900})  # fmt: skip
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield page, errors
        finally:
            context.close()


def _drop_file(page, selector: str, name: str, data: bytes) -> None:
    """Drop a file on `selector` the way a desktop drag does: a DataTransfer holding a File, then `drop`."""
    transfer = page.evaluate_handle(
        """([name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: "image/png" }));
            return dt;
        }""",
        [name, base64.b64encode(data).decode()],
    )
    page.dispatch_event(selector, "dragenter", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def _open_job(page, name: str) -> None:
    page.click(f"#jobs-table tbody tr:has(a:text-is('{name}')) a")
    page.wait_for_selector(f"#job-title:has-text('{name}')", timeout=JOB_TIMEOUT_MS)  # this job's view, not the last
    page.wait_for_selector("#job-text:not([hidden])", timeout=JOB_TIMEOUT_MS)


def test_the_page_uploads_shows_results_and_requeues(ocrd_daemon: DaemonHarness, tmp_path: Path, browser_page):
    page, errors = browser_page
    h = ocrd_daemon
    api = start_with_http(h)
    admin_token = add_token(h, "admin", "admin")
    base = f"http://127.0.0.1:{api.port}"

    page.goto(base + "/")
    response = page.request.get(base + "/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    page.screenshot(path=str(SCREENSHOTS / "ocrd-page-signin.png"))
    page.fill("#token-input", "ocrd_not-a-token")
    page.click("#login-form button")
    page.wait_for_selector("#login-error:has-text('refused')")
    # Chromium logs every refused fetch as a console error; this one was asked for, nothing else may be logged.
    assert errors and all("401" in e for e in errors), errors
    errors.clear()
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SCREENSHOTS / "ocrd-page-signin-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.fill("#token-input", admin_token)
    page.click("#login-form button")
    page.wait_for_selector("#dropzone:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('ocrd.token')") == admin_token

    # File picker: a scan whose text looks like markup, which must show as text and run nothing.
    markup = tmp_path / "markup.png"
    markup.write_bytes(encode_image(render_text_image("<b>Total</b> 42 <i>EUR</i>", width_px=700), "png"))
    page.set_input_files("#file-input", str(markup))
    page.wait_for_selector("#uploads li:has-text('queued as')")
    # Drag and drop.
    _drop_file(page, "#dropzone", "dropped.png", distinct_png(5, "Dropped"))
    page.wait_for_selector("#uploads li:has-text('dropped.png'):has-text('queued as')")
    page.wait_for_selector("#jobs-table tbody tr[data-state=done]:has(a:text-is('dropped.png'))", timeout=JOB_TIMEOUT_MS)
    page.wait_for_selector("#jobs-table tbody tr[data-state=done]:has(a:text-is('markup.png'))", timeout=JOB_TIMEOUT_MS)
    page.screenshot(path=str(SCREENSHOTS / "ocrd-page-jobs.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SCREENSHOTS / "ocrd-page-jobs-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1280, "height": 900})

    _open_job(page, "dropped.png")
    assert "0005" in page.text_content("#job-text")
    page.wait_for_function("document.getElementById('job-vis').naturalWidth > 0")
    outputs = page.eval_on_selector_all("#job-downloads a", "links => links.map(a => a.dataset.output)")
    assert {"result.json", "result.txt", "vis.jpg", "result.pdf"} <= set(outputs)
    with page.expect_download() as download:
        page.click("#job-downloads a[data-output='result.txt']")
    assert "0005" in Path(download.value.path()).read_text()
    page.screenshot(path=str(SCREENSHOTS / "ocrd-page-job.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SCREENSHOTS / "ocrd-page-job-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling on a phone
    page.set_viewport_size({"width": 1280, "height": 900})

    page.click("a[href='#/jobs']")
    _open_job(page, "markup.png")
    text = page.text_content("#job-text")
    assert "<b>" in text and "42" in text, text  # the markup was read, and shown as characters
    assert page.eval_on_selector("#job-text", "pre => pre.children.length") == 0

    # Quarantine: a truncated PNG is refused by intake; the admin requeues it from the page.
    broken = api.with_token(admin_token).upload(distinct_png(6)[:300], filename="broken.png").json()
    api.with_token(admin_token).wait_job(broken["id"])
    page.click("#nav-quarantine")
    row = f"#quarantine-table tbody tr[data-job='{broken['id']}']"
    page.wait_for_selector(row)
    assert page.text_content(f"{row} td:nth-child(2)") in ("truncated", "corrupt")
    page.screenshot(path=str(SCREENSHOTS / "ocrd-page-quarantine.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SCREENSHOTS / "ocrd-page-quarantine-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.click(f"{row} button.requeue")
    page.wait_for_selector(f"{row}:has-text('requeued')")
    assert any(e.get("job_id") == broken["id"] for e in h.events("job_requeued"))
    assert errors == [], errors
    assert h.stop() == 0, h.output()
