"""The Chinese edition shows Chinese in real JupyterLab, not empty boxes: headless Chromium opens a
copy of `notebooks/zh/00_start_here.ipynb`, finds its Chinese heading in the rendered page, and
draws Chinese characters from it on a canvas with the page's own font stack next to an unassigned
code point (U+0378, which every font lacks, so it draws the "tofu" box). Without a CJK font
(Debian: `apt-get install fonts-noto-cjk`) each Chinese character draws that same box and the test
fails. A self-check proves the comparison can see a missing glyph: two unassigned code points draw
identical boxes."""

from __future__ import annotations

import re
import shutil

import nbformat
import pytest
from slider_driver import TIMEOUT, open_notebook
from slider_notebooks import NOTEBOOKS

ZH_MAP = NOTEBOOKS / "zh" / "00_start_here.ipynb"
HAN = re.compile(r"[\u4e00-\u9fff]")

# Draw each string alone on a white canvas with the font of the rendered heading; return data URLs.
_DRAW_JS = """([selector, strings]) => {
  const el = document.querySelector(selector);
  const family = getComputedStyle(el).fontFamily;
  const draw = (s) => {
    const c = document.createElement('canvas');
    c.width = 64; c.height = 64;
    const g = c.getContext('2d');
    g.fillStyle = '#fff'; g.fillRect(0, 0, 64, 64);
    g.fillStyle = '#000'; g.textBaseline = 'top'; g.font = `40px ${family}`;
    g.fillText(s, 8, 8);
    return c.toDataURL('image/png');
  };
  return {family, text: el.textContent, images: strings.map(draw)};
}"""


def first_heading(path) -> str:
    """The first Markdown heading of the notebook at `path`, without its `#` marks."""
    for cell in nbformat.read(path, as_version=4).cells:
        found = re.search(r"^#+\s+(.+)$", cell.source, re.MULTILINE) if cell.cell_type == "markdown" else None
        if found:
            return found.group(1).strip()
    raise AssertionError(f"{path} has no Markdown heading")


def test_the_chinese_map_starts_with_a_chinese_heading():
    assert ZH_MAP.exists(), f"{ZH_MAP} is missing: run `python -m lora_lab zh`"
    assert len(set(HAN.findall(first_heading(ZH_MAP)))) >= 3


@pytest.mark.browser
def test_chinese_text_renders_as_glyphs_not_boxes(page, lab_server, lab_root, shots):
    name = "zh_00_start_here.ipynb"
    shutil.copyfile(ZH_MAP, lab_root / name)  # a copy: JupyterLab autosaves
    heading = first_heading(ZH_MAP)
    chars = list(dict.fromkeys(HAN.findall(heading)))[:6]
    open_notebook(page, lab_server, name, TIMEOUT)
    selector = ".jp-RenderedMarkdown h1"
    page.wait_for_selector(selector, timeout=TIMEOUT * 1000)
    page.screenshot(path=str(shots / "zh_00_start_here.png"))
    drawn = page.evaluate(_DRAW_JS, [selector, [*chars, "\u0378", "\u0379"]])
    glyphs, (tofu, other_tofu) = drawn["images"][:-2], drawn["images"][-2:]
    assert heading.split("·")[-1].strip() in drawn["text"], f"the rendered heading is {drawn['text']!r}"
    assert tofu == other_tofu, "self-check: two unassigned code points should draw the same box"
    boxes = [c for c, image in zip(chars, glyphs, strict=True) if image == tofu]
    assert boxes == [], (f"{boxes} drew as empty boxes with the page's fonts ({drawn['family']}): "
                         "install a CJK font (Debian: apt-get install fonts-noto-cjk)")
    assert len(set(glyphs)) == len(chars), "distinct Chinese characters drew identical images"
