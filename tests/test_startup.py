"""What a cold start imports while it waits (recoilsim/workflows/startup.py)."""

from __future__ import annotations

import subprocess
import sys


def test_output_modules_exist_and_are_imported():
    """Every name in OUTPUT_MODULES is a real module (import errors are skipped there, so a
    misspelt name would silently import nothing) and import_output_modules imports them all."""
    code = ("import sys\n"
            "from recoilsim.workflows.startup import OUTPUT_MODULES, import_output_modules\n"
            "assert not any(m in sys.modules for m in ('netCDF4', 'matplotlib.figure')), 'imported too early'\n"
            "import_output_modules()\n"
            "print(sorted(m for m in OUTPUT_MODULES if m not in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
