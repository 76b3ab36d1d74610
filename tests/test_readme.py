"""README's Python example runs as written, and its two commands are the ones CI runs."""

import re
from pathlib import Path

import matplotlib

ROOT = Path(__file__).resolve().parent.parent


def test_readme_python_example_runs():
    matplotlib.use("Agg")
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README has no Python example"
    ns: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), ns)
    ds = ns["ds"]
    assert float(ds["counts"].sel(element="Li").sum()) > 0


def test_ci_runs_readme_test_command():
    """.ci/run ends with exactly the test command README gives."""
    text = (ROOT / "README.md").read_text()
    cmds = re.findall(r"```bash\n(.*?)\n```", text, re.S)
    test_cmd = next(c for c in cmds if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_cmd.strip() in ci
