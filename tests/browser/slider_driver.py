"""Drive a notebook in JupyterLab with Playwright: open it, run all cells, move each control
(slider: keyboard and drag; dropdown: keyboard and selection) and check that what depends on it
changed."""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported for annotations only, so collecting the tests needs no Playwright
    from lab_server import LabServer
    from playwright.sync_api import Locator, Page

# the controls the test moves, in document order
CONTROLS = ".jp-Notebook .widget-slider, .jp-Notebook .widget-dropdown"
SLIDERS = ".jp-Notebook .widget-slider"
# generous (the CPU may be shared) but bounded waits, in seconds
TIMEOUT = float(os.environ.get("LORA_LAB_BROWSER_TIMEOUT", "180"))
RUN_ALL_TIMEOUT = 4 * TIMEOUT
_PROMPT_DONE = re.compile(r"^\[\d+\]:$")

# The box a control lives in: its nearest `lora-lab-*` container (the course's convention), else
# the outermost widget box in its output (e.g. what `interact` builds). Marks the control, the box
# and its cell, and returns what the box shows besides its controls (a slider's own readout
# always follows the handle, so it proves nothing about the callback).
_SNAPSHOT_JS = """([selector, index]) => {
  const INPUTS = '.widget-slider, .widget-dropdown, .widget-checkbox, .widget-toggle-buttons, '
               + '.widget-radio, .widget-select, .widget-text, img';
  const control = document.querySelectorAll(selector)[index];
  let el = control, box = null, outer = null;
  while (el && !el.classList.contains('jp-OutputArea-output')) {
    if (!box && [...el.classList].some(c => c.startsWith('lora-lab-'))) box = el;
    if (el.classList.contains('widget-container')) outer = el;
    el = el.parentElement;
  }
  box = box || outer || el;
  document.querySelectorAll('[data-lora-lab-test]').forEach(e => e.removeAttribute('data-lora-lab-test'));
  control.setAttribute('data-lora-lab-test', 'control');
  box.setAttribute('data-lora-lab-test', 'box');
  control.closest('.jp-Cell').setAttribute('data-lora-lab-test', 'cell');
  const clone = box.cloneNode(true);
  clone.querySelectorAll(INPUTS).forEach(e => e.remove());
  const images = [...box.querySelectorAll('img')];
  const handle = control.querySelector('.noUi-handle'), select = control.querySelector('select');
  return {
    kind: handle ? 'slider' : 'dropdown',
    label: control.querySelector('.widget-label')?.textContent.trim() || '',
    value: handle ? control.querySelector('.widget-readout')?.textContent.trim() || ''
                  : select.options[select.selectedIndex]?.text || '',
    at_end: handle ? handle.getAttribute('aria-valuenow') === handle.getAttribute('aria-valuemax')
                   : select.selectedIndex === select.options.length - 1,
    box: [...box.classList].find(c => c.startsWith('lora-lab-')) || 'widget box',
    text: clone.textContent.replace(/\\s+/g, ' ').trim(),
    images: images.map(i => i.src),
    loaded: images.every(i => i.complete && i.naturalWidth > 0),
  };
}"""


class DidNotChange(AssertionError):
    """A control moved but what depends on it did not change."""


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
    """What control `index` shows and what its box shows besides its controls; marks the control,
    its box and its cell (data-lora-lab-test) for the moves and screenshots."""
    return page.evaluate(_SNAPSHOT_JS, [CONTROLS, index])


def settle(page: Page, index: int, timeout: float) -> dict:
    """Wait until control `index`'s box shows the same thing twice in a row with images loaded."""
    last = {}

    def stable():
        nonlocal last
        now = snapshot(page, index)
        same, last = now == last, now
        return now if same and now["loaded"] else None

    return _poll(stable, timeout, f"control {index}'s box to stop changing", page, interval_ms=500)


def _control(page: Page) -> Locator:
    return page.locator('[data-lora-lab-test="control"]')


def press_key(page: Page, state: dict) -> str:
    """Focus the control and use the keyboard: a slider goes to its end (End, or Home when it is
    there already); a dropdown's list is opened (Alt+ArrowDown) and the next option (the previous
    from the last) chosen with Enter. A bare ArrowDown on a closed dropdown does not work here:
    JupyterLab's notebook shortcuts take it (it moves the cell selection)."""
    if state["kind"] == "slider":
        keys = ["Home" if state["at_end"] else "End"]
        _control(page).locator(".noUi-handle").first.focus()
    else:
        keys = ["Alt+ArrowDown", "ArrowUp" if state["at_end"] else "ArrowDown", "Enter"]
        _control(page).locator("select").focus()
    for key in keys:
        page.keyboard.press(key)
    return "keyboard " + ", ".join(keys)


def drag(page: Page, state: dict) -> str:
    """Drag a slider's handle with the mouse to 30% (or 70%) of its track."""
    handle = _control(page).locator(".noUi-handle").first
    handle.scroll_into_view_if_needed()
    h, track = handle.bounding_box(), _control(page).locator(".noUi-base").first.bounding_box()
    x, y = h["x"] + h["width"] / 2, h["y"] + h["height"] / 2
    if handle.get_attribute("aria-orientation") == "vertical":  # the top is the maximum
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


def choose(page: Page, state: dict) -> str:
    """Select a dropdown's first option (its last, if the first is selected) as a user would."""
    select = _control(page).locator("select")
    options = select.locator("option").all_inner_texts()
    option = options[-1] if options[0] == state["value"] else options[0]
    select.select_option(label=option)
    return f"selecting {option!r}"


# each kind of control is moved two ways
MOVES = {"slider": (("keyboard", press_key), ("drag", drag)),
         "dropdown": (("keyboard", press_key), ("select", choose))}


def _what_changed(before: dict, after: dict) -> dict:
    return {"value": after["value"] != before["value"],
            "text": not before["text"] or after["text"] != before["text"],
            "image": not before["images"] or after["images"] != before["images"]}


def wait_for_change(page: Page, index: int, before: dict, move: str, timeout: float) -> dict:
    """Wait until the control's value, the text of its box (if any) and its images (if any) all
    changed from `before`; DidNotChange naming what did not."""
    name = f"{before['kind']} {index} ({before['label']!r} in {before['box']})"
    if not before["text"] and not before["images"]:
        raise DidNotChange(f"{name}: its box shows no text and no image besides its controls, so "
                           "nothing can be seen to depend on it")
    last = before

    def changed():
        nonlocal last
        last = snapshot(page, index)
        return all(_what_changed(before, last).values()) and last["loaded"]

    try:
        _poll(changed, timeout, "a change", page)
    except TimeoutError:
        stale = [k for k, ok in _what_changed(before, last).items() if not ok]
        raise DidNotChange(
            f"{name} moved by {move} from {before['value']} to {last['value']}, but its "
            f"{' and '.join(stale)} did not change within {timeout:.0f} s. "
            f"Text before: {before['text'][:200]!r}; after: {last['text'][:200]!r}"
        ) from None
    return settle(page, index, timeout)


def screenshot_cell(page: Page, path: Path) -> None:
    """Screenshot the cell marked by the last snapshot (the element, not the page)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.locator('[data-lora-lab-test="cell"]').screenshot(path=str(path))


def check_control(page: Page, index: int, shots: Path, prefix: str, timeout: float) -> list[dict]:
    """Move control `index` two ways (MOVES); after each, assert that what depends on it changed.
    Saves PREFIX-before / -after-<move> screenshots of its cell in `shots`."""
    state = settle(page, index, timeout)
    screenshot_cell(page, shots / f"{prefix}-before.png")
    moves = []
    for name, move in MOVES[state["kind"]]:
        how = move(page, state)
        after = wait_for_change(page, index, state, how, timeout)
        screenshot_cell(page, shots / f"{prefix}-after-{name}.png")
        moves.append({"kind": state["kind"], "label": state["label"], "box": state["box"],
                      "move": how, "from": state["value"], "to": after["value"]})
        state = after
    return moves
