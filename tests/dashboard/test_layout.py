"""The dashboard's layout on a phone and on a desktop: no horizontal scrolling, and no chart text
(axis labels, legends, donut labels) drawn over other text, measured on what ECharts drew."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dashboard.harness import ARTIFACTS, Browser, DemoProcess

# Every text element each chart drew and kept (ECharts marks the labels it hid to avoid an
# overlap `ignore`), as boxes in page pixels; pairs of boxes that intersect.
OVERLAPS = """async () => {
  const { chartOf } = await import("/static/charts.js");
  const found = [];
  for (const element of document.querySelectorAll(".chart")) {
    const chart = chartOf(element);
    if (!chart || element.offsetParent === null) continue;
    const boxes = [];
    chart.getZr().storage.getDisplayList(true).forEach((el) => {
      if (el.type !== "text" || el.ignore || el.invisible || !el.style || !el.style.text) return;
      let hidden = false;
      for (let p = el.parent; p; p = p.parent) if (p.ignore || p.invisible) hidden = true;
      if (hidden) return;
      const box = el.getBoundingRect().clone();
      const transform = el.getComputedTransform();
      if (transform) box.applyTransform(transform);
      if (box.width > 0 && box.height > 0) boxes.push({ text: String(el.style.text), box });
    });
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i].box, b = boxes[j].box;
        const x = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
        const y = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
        const pair = `${element.id}: "${boxes[i].text}" / "${boxes[j].text}"`;
        if (x > 0.5 && y > 0.5) found.push(pair);
      }
    }
  }
  return found;
}"""

OVERFLOW = """() => ({
  page: document.documentElement.scrollWidth,
  viewport: window.innerWidth,
  wider: [...document.querySelectorAll("body *")]
    .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5
      && !el.closest(".scroll, .rebalance > *") && el.offsetParent !== null)
    .map((el) => el.id || el.className || el.tagName).slice(0, 10),
})"""


@pytest.fixture
def sized(browser: Browser) -> Iterator[Browser]:
    yield browser
    browser.call("viewport", width=1440, height=1800)  # the other tests' size


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1400, 1000), (360, 740)])
def test_no_horizontal_scroll_and_no_overlapping_chart_text(
    sized: Browser, demo: DemoProcess, width: int, height: int
) -> None:
    sized.call("viewport", width=width, height=height)
    sized.call("open", url=f"{demo.url}/#token={demo.token}")
    sized.call("screenshot", path=str(ARTIFACTS / f"dashboard-{width}x{height}.png"))
    overflow = sized.eval(OVERFLOW)
    assert overflow["page"] <= overflow["viewport"], overflow
    assert overflow["wider"] == [], overflow
    assert sized.eval(OVERLAPS) == []
