"""Without Playwright, the browser tests fail one by one; collection (the whole run) does not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Runs pytest's collection of test_browser.py with ``import playwright`` made to fail.
BLOCKED = """
import sys, pytest
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "playwright" or name.startswith("playwright."):
            raise ImportError("blocked for the test")
sys.meta_path.insert(0, Block())
sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", sys.argv[1]]))
"""


def test_the_browser_tests_are_collected_without_playwright() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCKED, str(HERE / "test_browser.py")],
        capture_output=True, text=True, cwd=HERE.parents[1], check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_customize_preview_embed_and_post" in done.stdout
