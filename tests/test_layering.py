"""The package directions hold: steps ← orchestration ← tools (an arrow points at what may be imported).

`src/steps` runs inside Azure ML from a snapshot of `src/` and must not need the orchestration side (its
settings, pydantic, the runner); `orchestration` must not need the developer tools.
"""
import ast
from pathlib import Path

import pytest
from orchestration.paths import ROOT

LAYERS = {"steps": ROOT / "src" / "steps", "orchestration": ROOT / "src" / "orchestration",
          "tools": ROOT / "tools"}
FORBIDDEN = {"steps": {"orchestration", "tools"}, "orchestration": {"tools"}, "tools": set()}


def imported_packages(path: Path) -> set[str]:
    """The top-level package of every import in a file, including imports inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def violations(layer: str) -> list[str]:
    return [f"{path.relative_to(ROOT)} imports {package}"
            for path in sorted(LAYERS[layer].rglob("*.py"))
            for package in sorted(imported_packages(path) & FORBIDDEN[layer])]


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_no_layer_imports_a_layer_above_it(layer):
    assert violations(layer) == []


def test_the_check_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "step.py"
    source.write_text("def f():\n    from orchestration.cloud import blob_store\n")
    assert imported_packages(source) == {"orchestration"}


def test_the_runner_and_the_tools_load_no_settings_machinery():
    """Workers start fast and tools stay light: pydantic is for the command lines that read settings."""
    import subprocess
    import sys

    probe = ("import sys; import orchestration.prs.scheduler, orchestration.prs.worker, tools.make_data, "
             "tools.bench; print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic'))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                            env={"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
