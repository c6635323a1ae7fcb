"""Drive a notebook in JupyterLab with Playwright: open it, run all cells, move each slider by
keyboard and by drag, and check that what depends on the slider changed."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported for annotations only, so collecting the tests needs no Playwright
    from lab_server import LabServer
    from playwright.sync_api import Locator, Page

SLIDERS = ".jp-Notebook .widget-slider"
_PROMPT_DONE = re.compile(r"^\[\d+\]:$")

# The box a slider lives in: its nearest `lora-lab-*` container (the course's convention), else
# the outermost widget box in its output (e.g. what `interact` builds). Marks it and its cell for
# screenshots and returns what is visible there, leaving out the sliders (their own readouts
# always follow the handle, so they prove nothing about the callback) and the other controls.
_SNAPSHOT_JS = """([selector, index]) => {
  const CONTROLS = '.widget-slider, .widget-dropdown, .widget-checkbox, .widget-toggle-buttons, '
                 + '.widget-radio, .widget-select, .widget-text, img';
  const slider = document.querySelectorAll(selector)[index];
  let el = slider, box = null, outer = null;
  while (el && !el.classList.contains('jp-OutputArea-output')) {
    if (!box && [...el.classList].some(c => c.startsWith('lora-lab-'))) box = el;
    if (el.classList.contains('widget-container')) outer = el;
    el = el.parentElement;
  }
  box = box || outer || el;
  document.querySelectorAll('[data-lora-lab-test]').forEach(e => e.removeAttribute('data-lora-lab-test'));
  box.setAttribute('data-lora-lab-test', 'box');
  slider.closest('.jp-Cell').setAttribute('data-lora-lab-test', 'cell');
  const clone = box.cloneNode(true);
  clone.querySelectorAll(CONTROLS).forEach(e => e.remove());
  const images = [...box.querySelectorAll('img')];
  const handle = slider.querySelector('.noUi-handle');
  return {
    label: slider.querySelector('.widget-label')?.textContent.trim() || '',
    value: slider.querySelector('.widget-readout')?.textContent.trim() || '',
    at_max: handle.getAttribute('aria-valuenow') === handle.getAttribute('aria-valuemax'),
    box: [...box.classList].find(c => c.startsWith('lora-lab-')) || 'widget box',
    text: clone.textContent.replace(/\\s+/g, ' ').trim(),
    images: images.map(i => i.src),
    loaded: images.every(i => i.complete && i.naturalWidth > 0),
  };
}"""


class SliderDidNotChange(AssertionError):
    """A slider moved but what depends on it did not change."""


def _poll(condition, timeout: float, what: str, page: Page, interval_ms: int = 250):
    """Call `condition()` until it returns something truthy; TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        page.wait_for_timeout(interval_ms)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def open_notebook(page: Page, server: LabServer, name: str, timeout: float) -> None:
    """Open `name` in JupyterLab and wait until its kernel is connected and idle."""
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    # a workspace of its own: the default one would reopen the notebooks earlier pages had open
    page.goto(server.url(f"lab/workspaces/t{uuid.uuid4().hex[:12]}/tree/{name}"), timeout=timeout * 1000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout * 1000)
    # the indicator reads idle before a kernel exists: wait for the kernel's own websocket first,
    # or Run All is sent nowhere and the outputs are silently cleared
    _poll(lambda: any("/channels" in url for url in sockets), timeout, "the kernel's websocket", page)
    wait_idle(page, timeout)


def wait_idle(page: Page, timeout: float) -> None:
    """Wait until the notebook's kernel reports idle (in the toolbar's and the status bar's
    indicators alike; one of them may be hidden, so visibility is not asked for)."""
    idle = ("() => { const s = [...document.querySelectorAll('.jp-Notebook-ExecutionIndicator')];"
            " return s.length > 0 && s.every(e => e.dataset.status === 'idle'); }")
    page.wait_for_function(idle, timeout=timeout * 1000, polling=250)


def run_all(page: Page, timeout: float) -> None:
    """Run All Cells from the menu; wait until every code cell has an execution count."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt")

    def done() -> bool:
        return all(_PROMPT_DONE.match(t.strip()) for t in prompts.all_inner_texts())

    _poll(done, timeout, "every code cell to finish (Run All)", page)
    wait_idle(page, timeout)


def error_outputs(page: Page) -> list[str]:
    """The tracebacks shown in the notebook's outputs (none after a clean run)."""
    texts = page.locator('.jp-Notebook [data-mime-type="application/vnd.jupyter.stderr"]').all_inner_texts()
    return [t for t in texts if "Traceback" in t or re.search(r"\w+Error\b", t)]


def snapshot(page: Page, index: int) -> dict:
    """What slider `index` shows and what its box shows besides it (also marks box and cell)."""
    return page.evaluate(_SNAPSHOT_JS, [SLIDERS, index])


def settle(page: Page, index: int, timeout: float) -> dict:
    """Wait until slider `index`'s box shows the same thing twice in a row with images loaded."""
    last = {}

    def stable():
        nonlocal last
        now = snapshot(page, index)
        same, last = now == last, now
        return now if same and now["loaded"] else None

    return _poll(stable, timeout, f"slider {index}'s box to stop changing", page, interval_ms=500)


def press_key(page: Page, slider: Locator, at_max: bool) -> str:
    """Focus the handle and press End (Home when it already is at the end); return the move."""
    key = "Home" if at_max else "End"
    slider.locator(".noUi-handle").first.focus()
    page.keyboard.press(key)
    return f"keyboard {key}"


def drag(page: Page, slider: Locator) -> str:
    """Drag the handle with the mouse to 30% (or 70%) of the track; return the move."""
    handle = slider.locator(".noUi-handle").first
    handle.scroll_into_view_if_needed()
    h, track = handle.bounding_box(), slider.locator(".noUi-base").first.bounding_box()
    vertical = handle.get_attribute("aria-orientation") == "vertical"
    x, y = h["x"] + h["width"] / 2, h["y"] + h["height"] / 2
    if vertical:  # top is the maximum
        frac = 0.7 if y < track["y"] + track["height"] / 2 else 0.3
        tx, ty = x, track["y"] + frac * track["height"]
    else:
        frac = 0.3 if x > track["x"] + track["width"] / 2 else 0.7
        tx, ty = track["x"] + frac * track["width"], y
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(tx, ty, steps=12)
    page.mouse.up()
    return f"drag to {frac:.0%} of the track"


def _what_changed(before: dict, after: dict) -> dict:
    return {"value": after["value"] != before["value"],
            "text": not before["text"] or after["text"] != before["text"],
            "image": not before["images"] or after["images"] != before["images"]}


def wait_for_change(page: Page, index: int, before: dict, move: str, timeout: float) -> dict:
    """Wait until the slider's value, the text of its box (if any) and its images (if any) all
    changed from `before`; SliderDidNotChange naming what did not."""
    if not before["text"] and not before["images"]:
        raise SliderDidNotChange(f"slider {index} ({before['label']!r}): its box shows no text and no "
                                 "image besides the slider, so nothing can be seen to depend on it")
    last = before

    def changed():
        nonlocal last
        last = snapshot(page, index)
        return all(_what_changed(before, last).values()) and last["loaded"]

    try:
        _poll(changed, timeout, "a change", page)
    except TimeoutError:
        stale = [k for k, ok in _what_changed(before, last).items() if not ok]
        raise SliderDidNotChange(
            f"slider {index} ({before['label']!r} in {before['box']}) moved by {move} from "
            f"{before['value']} to {last['value']}, but its {' and '.join(stale)} did not change "
            f"within {timeout:.0f} s. Text before: {before['text'][:200]!r}; after: {last['text'][:200]!r}"
        ) from None
    return settle(page, index, timeout)


def screenshot_cell(page: Page, path: Path) -> None:
    """Screenshot the cell marked by the last snapshot (the element, not the page)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.locator('[data-lora-lab-test="cell"]').screenshot(path=str(path))


def check_slider(page: Page, index: int, shots: Path, prefix: str, timeout: float) -> list[dict]:
    """Move slider `index` by keyboard, then by drag; each time assert that its dependents changed.
    Saves PREFIX-before / -after-keyboard / -after-drag screenshots in `shots`."""
    slider = page.locator(SLIDERS).nth(index)
    state = settle(page, index, timeout)
    screenshot_cell(page, shots / f"{prefix}-before.png")
    moves = []
    for name, move in (("keyboard", lambda s: press_key(page, slider, s["at_max"])),
                       ("drag", lambda s: drag(page, slider))):
        how = move(state)
        after = wait_for_change(page, index, state, how, timeout)
        screenshot_cell(page, shots / f"{prefix}-after-{name}.png")
        moves.append({"move": how, "from": state["value"], "to": after["value"], "box": state["box"]})
        state = after
    return moves
