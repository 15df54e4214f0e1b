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


def test_usage_example_prints_what_the_readme_says(capsys):
    text = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)\n```", text, flags=re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    stated = re.search(r"```\n\nprints `([^`]+)`", text.split("```python", 1)[1])
    assert stated and capsys.readouterr().out.strip() == stated.group(1)


def test_readme_describes_the_demo_as_it_runs():
    """The main command's description names every family the demo runs, and its outputs."""
    from sklearn_certify.cli import build_parser
    from sklearn_certify.cli._families import FAMILIES

    text = " ".join((ROOT / "README.md").read_text().split())
    intro = text.split("```bash", 1)[0].rsplit("## Two commands", 1)[1]
    for family in FAMILIES.values():
        assert family.name in intro, family.name
    assert "one table" in intro and "one figure, a panel per family" in intro
    assert "exactly or with probability `1 - alpha`" in intro
    assert build_parser().parse_args(["demo"]).families == list(FAMILIES)  # all by default
