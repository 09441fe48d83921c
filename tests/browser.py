"""Headless Chromium for the tests that check what a person sees: a page's DOM after plotly has drawn.

Without a browser these checks skip on a developer's machine (`make test` installs one when it can) and fail
under CI, where `make test` has installed it: a browser check that silently skipped there would prove nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str:
    """The browser's path; skip (or, with CI set, fail) when there is none."""
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    message = "no Chromium here: apt-get install -y chromium (make test does it as root)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser checks: {message}")
    pytest.skip(message)


def rendered_dom(page: Path, width: int = 1280, height: int = 900, budget_ms: int = 10_000) -> str:
    """`page` as Chromium leaves it once its scripts have run (`--dump-dom`), in a width x height window."""
    proc = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={width},{height}",
                           f"--virtual-time-budget={budget_ms}", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0 or "<body" not in proc.stdout:
        raise AssertionError(f"chromium could not render {page}: rc {proc.returncode}\n{proc.stderr[-2000:]}")
    return proc.stdout
