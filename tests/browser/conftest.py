"""Fixtures for the browser test: Debian's Chromium driven by Playwright, one JupyterLab server
on a temporary copy of the notebooks, screenshots in test-artifacts/browser/.

Without Chromium (or Playwright) the browser tests skip; with LORA_LAB_REQUIRE_BROWSER=1 (as
.ci/run sets) they fail instead, so CI cannot pass without really running them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from lab_server import shutdown_kernels, start_server, stop_server
from slider_driver import TIMEOUT
from slider_notebooks import NOTEBOOKS, REPO, copy_without_outputs, self_check_notebook, slider_notebooks

ARTIFACTS = REPO / "test-artifacts" / "browser"
REQUIRE = "LORA_LAB_REQUIRE_BROWSER"
# Playwright cannot download its own browser here; the system Chromium runs with these flags
# (no sandbox as root in a container, no GPU, and nothing that reaches for the network)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# the generated self-check notebooks, served next to the copies of the course's notebooks
SELF_CHECKS = {"selfcheck_working.ipynb": (("working",), True),
               "selfcheck_broken.ipynb": (("stale_image", "raises"), False)}


CALL_FAILED = pytest.StashKey[bool]()


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: runs JupyterLab in headless Chromium (slow)")


def find_chromium() -> str | None:
    """The Chromium to drive: $LORA_LAB_CHROMIUM, else `chromium` / `chromium-browser` on PATH."""
    return (os.environ.get("LORA_LAB_CHROMIUM") or shutil.which("chromium")
            or shutil.which("chromium-browser"))


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE, "") not in ("", "0"):
        pytest.fail(f"{reason}, and {REQUIRE} is set, so the browser test must run", pytrace=False)
    pytest.skip(f"{reason}; install it (Debian/Ubuntu: `apt-get install chromium`) to run the "
                f"browser test, or set {REQUIRE}=1 to make this a failure")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of the system Chromium; skips (or fails, see REQUIRE) when it is missing."""
    path = find_chromium()
    if not path or not os.access(path, os.X_OK):
        _unavailable("Chromium was not found (looked for $LORA_LAB_CHROMIUM, `chromium`, `chromium-browser`)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the Python package playwright is not installed")
    return path


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory) -> Path:
    """A temporary copy of the slider notebooks (outputs cleared) plus the self-check notebooks;
    JupyterLab autosaves, so it must never open the masters."""
    root = tmp_path_factory.mktemp("lab-root")
    for path in slider_notebooks(NOTEBOOKS):
        copy_without_outputs(path, root / path.name)
    for name, (callbacks, interact) in SELF_CHECKS.items():
        self_check_notebook(root / name, callbacks, interact)
    return root


@pytest.fixture(scope="session")
def lab_server(chromium, lab_root, tmp_path_factory):
    """One JupyterLab server for the session, stopped by its own process id afterwards."""
    server = start_server(lab_root, tmp_path_factory.mktemp("lab-state"), timeout=TIMEOUT)
    try:
        yield server
    finally:
        stop_server(server)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(server.log, ARTIFACTS / "jupyterlab.log")


@pytest.fixture(scope="session")
def browser(chromium):
    """Headless Chromium, launched once for the session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    """test-artifacts/browser/, emptied once per session (screenshots and a log of the moves)."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


@pytest.fixture
def page(request, browser, lab_server):
    """A fresh browser context and page; afterwards (a screenshot of the whole page when the test
    failed, in test-artifacts/browser/failures/) the page closes and its kernel is shut down."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT * 1000)
    try:
        yield page
        if request.node.stash.get(CALL_FAILED, False):
            (ARTIFACTS / "failures").mkdir(parents=True, exist_ok=True)
            safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in request.node.name)
            page.screenshot(path=str(ARTIFACTS / "failures" / f"{safe}.png"), full_page=True)
    finally:
        context.close()
        shutdown_kernels(lab_server)
