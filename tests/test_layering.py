"""The package directions hold: steps ← orchestration ← tools (an arrow points at what may be imported),
and inside orchestration: the shared modules ← prs (the runner) ← jobs ← cloud, local_pipeline.

`src/steps` runs inside Azure ML from a snapshot of `src/` and must not need the orchestration side (its
settings, pydantic, the runner); `orchestration` must not need the developer tools. Inside orchestration,
the runner is a general ParallelRunStep emulator that v2 jobs, the local pipeline and the Azure glue use,
never the reverse. `__main__.py` files are entry points outside the layers: they may dispatch upward.
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


# Each group of orchestration (a sub-package, or a top-level module) and its layer; a group imports its
# own layer's shared modules and lower layers only, and groups of layer 3 do not import each other.
SHARED = ("errors", "paths", "secrets", "parallel_fields", "interrupts", "processes", "stopping", "commands",
          "run_settings", "settings")
LAYER_OF = {**dict.fromkeys(SHARED, 0), "prs": 1, "jobs": 2, "cloud": 3, "local_pipeline": 3}
RULES = {0: "the shared modules import nothing above them", 1: "prs (the runner) imports only the shared "
         "modules", 2: "jobs imports prs and the shared modules", 3: "cloud and local_pipeline import "
         "what is below them, never each other"}
ORCHESTRATION = ROOT / "src" / "orchestration"


def group_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "orchestration" and len(parts) > 1 else None


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports by absolute name, including imports inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def group_edges() -> dict[tuple[str, str], list[str]]:
    """(importing group, imported group) -> the importing files; entry points left out."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(ORCHESTRATION.rglob("*.py")):
        if path.name == "__main__.py" or path.parent == ORCHESTRATION and path.name == "__init__.py":
            continue
        mine = path.relative_to(ORCHESTRATION).parts[0].removesuffix(".py")
        for module in imported_modules(path):
            theirs = group_of(module)
            if theirs and theirs != mine:
                edges.setdefault((mine, theirs), []).append(str(path.relative_to(ROOT)))
    return edges


def test_every_orchestration_group_has_a_layer():
    groups = {path.name.removesuffix(".py") for path in ORCHESTRATION.iterdir()
              if path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").exists())}
    assert groups - {"__init__", "__main__"} == set(LAYER_OF)


def test_inside_orchestration_imports_point_down_only():
    broken = [f"{files[0]} imports orchestration.{theirs}: {RULES[LAYER_OF[mine]]}"
              for (mine, theirs), files in sorted(group_edges().items())
              if LAYER_OF[theirs] > LAYER_OF[mine] or (LAYER_OF[theirs] == LAYER_OF[mine] == 3)]
    assert broken == []


def test_the_runner_is_used_through_its_face():
    """Above the runner, only the modules orchestration.prs names as its face are imported."""
    from orchestration.prs import FACE

    inside = [f"{path.relative_to(ROOT)} imports {module}"
              for path in sorted([*ORCHESTRATION.rglob("*.py"), *(ROOT / "tools").rglob("*.py")])
              if "prs" not in path.relative_to(ROOT).parts and "node_modules" not in path.parts
              for module in imported_modules(path)
              if module.startswith("orchestration.prs.") and module.split(".")[2] not in FACE]
    assert inside == []


def test_no_two_orchestration_groups_import_each_other():
    edges = group_edges()
    assert [pair for pair in edges if (pair[1], pair[0]) in edges] == []


def test_the_check_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "step.py"
    source.write_text("def f():\n    from orchestration.cloud import blob_store\n")
    assert imported_packages(source) == {"orchestration"}


def test_the_runner_and_the_tools_load_no_settings_machinery():
    """The runner's command line, its workers and the tools start fast: pydantic is for the commands that
    read every setting (the Azure ones, make local-run); a run reads its own (orchestration.run_settings)."""
    import subprocess
    import sys

    probe = ("import sys; import orchestration.prs.cli, orchestration.prs.worker, orchestration.jobs.cli, "
             "tools.make_data, tools.bench; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic'))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                            env={"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
