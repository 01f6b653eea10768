"""Screenshot the viewer's sample page of the worked example into results/viewer_sample.png.

Needs the `all-8` run directory that results/make_example.py writes (default runs/example/all-8),
Playwright (`pip install -e ".[view]"`) and Debian's Chromium (`apt-get install chromium`):

    python results/make_example.py                  # once: the run directories
    python results/make_viewer_screenshot.py        # budgeteval view, then the screenshot

The page shown: MATH problem 0, sample 0 at the 256-token budget — cut before its answer at 128
and 256 (wrong), finished at 384 and beyond (right).
"""

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROUTE = "#sample/0/0/256/cutoff"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "example" / "all-8",
                        help="The worked example's all-8 run directory.")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "viewer_sample.png")
    args = parser.parse_args()
    if not (args.run / "manifest.json").is_file():
        sys.exit(f"{args.run} is not a run directory: run results/make_example.py first (or pass --run).")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as site:
        command = ["view", str(args.run), "-o", site]
        print("$ budgeteval " + " ".join(shlex.quote(part) for part in command))
        subprocess.run([sys.executable, "-m", "budgeteval.cli", *command], check=True, cwd=ROOT, capture_output=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=os.environ.get("BUDGETEVAL_CHROMIUM", "/usr/bin/chromium"), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1150}, device_scale_factor=1)
                page.goto((Path(site) / "index.html").as_uri() + ROUTE)
                page.wait_for_function("() => (document.body.dataset.ready || '').startsWith('sample:')")
                page.screenshot(path=str(args.out))
            finally:
                browser.close()
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
