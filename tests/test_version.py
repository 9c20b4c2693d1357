"""One version: CHANGELOG.md's latest release is the one that the package, ``fusenn
--version`` and the installed metadata report."""
import importlib.metadata
import os
import re
import subprocess
import sys

import fusenn as fn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _latest_release():
    with open(os.path.join(ROOT, "CHANGELOG.md"), encoding="utf-8") as fh:
        releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", fh.read(),
                              flags=re.MULTILINE)
    assert releases, "CHANGELOG.md names no release ('## [x.y.z] - YYYY-MM-DD')"
    return releases[0]


def test_the_changelog_the_package_and_the_command_share_one_version():
    version = _latest_release()
    assert fn.__version__ == version
    assert importlib.metadata.version("fusenn") == version
    proc = subprocess.run([sys.executable, "-m", "fusenn", "--version"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"fusenn {version}"
