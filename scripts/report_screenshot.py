"""Screenshot a report page in headless Chromium, and check in that browser that every image of it loads.

    python scripts/report_screenshot.py REPORT.html OUT.png [--width 1200] [--height 2400]

The README's docs/report.png is made with this script (see README, "Reports"). Chromium (Debian's package
``chromium``) is looked up on PATH as chromium, chromium-browser or google-chrome.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
CHECK = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const ok = images.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute("data-images", ok + "/" + images.length);
});
</script>"""


def browser() -> str | None:
    """The Chromium executable, or None where none is installed."""
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def _run(args: list[str]) -> subprocess.CompletedProcess:
    exe = browser()
    if exe is None:
        raise RuntimeError("no Chromium on PATH (apt-get install chromium)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=5000"]
    return subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=120, check=True)


def screenshot(page: Path, out: Path, width: int = 1200, height: int = 2400) -> Path:
    """A PNG of the top ``height`` pixels of ``page`` at ``width`` pixels."""
    _run([f"--screenshot={out.resolve()}", f"--window-size={width},{height}", page.resolve().as_uri()])
    return out


FIRST_SCREEN = """<script>
window.addEventListener("load", () => {
  const seen = [...document.querySelectorAll("h1, h2, p, nav, th, td, li")]
    .filter(e => e.getBoundingClientRect().bottom <= window.innerHeight && !e.closest("#first-screen"))
    .map(e => e.innerText.replace(/\\s+/g, " "));
  const out = document.createElement("pre");
  out.id = "first-screen";
  out.textContent = seen.join("\\n");
  document.body.appendChild(out);
});
</script>"""


def first_screen(page: Path, width: int = 1200, height: int = 1000) -> str:
    """The text of the elements that lie wholly within the first ``width`` x ``height`` pixels of ``page`` as
    Chromium lays it out (one element per line), read from its DOM after load."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / page.name
        copy.write_text(page.read_text().replace("</body>", FIRST_SCREEN + "</body>"))
        dom = _run([f"--window-size={width},{height}", "--dump-dom", copy.as_uri()]).stdout
    found = re.search(r'<pre id="first-screen">(.*?)</pre>', dom, re.S)
    if not found:
        raise RuntimeError("the page did not finish loading in Chromium")
    return html.unescape(found.group(1))


def images_loaded(page: Path) -> tuple[int, int]:
    """(images that decoded, images) of ``page`` as Chromium loads it (a copy with a checking script is loaded;
    the report itself has no script)."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / page.name
        copy.write_text(page.read_text().replace("</body>", CHECK + "</body>"))
        dom = _run(["--dump-dom", copy.as_uri()]).stdout
    found = re.search(r'data-images="(\d+)/(\d+)"', dom)
    if not found:
        raise RuntimeError("the page did not finish loading in Chromium")
    return int(found.group(1)), int(found.group(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=2400)
    args = parser.parse_args()
    loaded, total = images_loaded(args.page)
    screenshot(args.page, args.out, args.width, args.height)
    print(f"{args.page}: {loaded}/{total} images load in Chromium; wrote {args.out}")
    sys.exit(0 if loaded == total else 1)


if __name__ == "__main__":
    main()
