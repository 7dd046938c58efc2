"""Where the repository's parts are, computed once."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository (src/orchestration/paths.py)
SRC = ROOT / "src"  # the code: importable packages, and the snapshot Azure ML uploads with each step
