"""The installed package: recoilsim.kernels importable, no bare top-level ``kernels`` module."""

import subprocess
import sys


def test_kernels_import_path_and_no_top_level_kernels(tmp_path):
    code = ("import importlib.util, recoilsim, recoilsim.kernels, recoilsim.kernels.slab; "
            "print(importlib.util.find_spec('kernels') is None)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
