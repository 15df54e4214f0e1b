"""The README's test command is exactly what CI runs, and its usage example works."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    return re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


def test_ci_runs_the_readme_test_command_verbatim():
    install_and_demo, install_and_test = readme_commands()[:2]
    assert "python -m sklearn_certify demo" in install_and_demo
    assert install_and_test.startswith("pip install torch==2.13.0")
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install_and_test in ci_lines


def test_usage_example_runs():
    code = re.search(r"```python\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)
    namespace = {}
    exec(compile(code.group(1), "README.md", "exec"), namespace)
    cert = namespace["cert"]
    assert cert.unit == "samples" and cert.radius.max() >= 3
