"""Where a path of a job YAML is on this machine: every bound path is absolute, as on a compute node.

- a local path is relative to the YAML file that names it;
- `azureml://datastores/<name>/paths/<p>` is `<p>` in the datastore's local folder (default
  `OUTPUT/datastores/<name>/`, or `--datastore NAME=PATH`);
- registered assets (`azureml:name:version`, `azureml:name@latest`), registries and web URLs cannot be
  reached without Azure: refused by name.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from orchestration.errors import UsageError

# OUTPUT's own entries beside the node folders OUTPUT/<node>: no node may take their names.
DATASTORES_FOLDER = "datastores"  # the datastores' default local folders: the user's data may be there
PYTHON_FOLDER = ".python"  # `python` for the command nodes' PATH
WRITTEN_RECORD = ".written-by-local-job.json"  # what the last local job run created in OUTPUT
RESERVED_NAMES = (DATASTORES_FOLDER, PYTHON_FOLDER, WRITTEN_RECORD)
MLFLOW_FOLDER = "mlruns"  # the job's one MLflow store, unless MLFLOW_TRACKING_URI is set; a rerun replaces it

DATASTORE_URI = re.compile(r"^azureml://datastores/(?P<name>[^/]+)/paths/(?P<path>.*)$")
DEFAULT_DATASTORE = "workspaceblobstore"  # what ${{default_datastore}} means in a workspace left as created


@dataclass(frozen=True)
class Datastores:
    """Each datastore's local folder: `--datastore NAME=PATH`, else `<root>/<name>`."""
    root: Path
    folders: dict[str, Path] = field(default_factory=dict)

    def folder(self, name: str) -> Path:
        return (self.folders.get(name) or self.root / name).resolve()


def local_path(value: str, base: Path, datastores: Datastores, what: str) -> Path:
    """The absolute local path of a YAML path `value`, named `what` in errors.

    Raises:
        UsageError: for assets, registries and URLs that only Azure can reach.
    """
    text = str(value).strip()
    match = DATASTORE_URI.match(text)
    if match:
        if match["name"] in (".", ".."):
            raise UsageError(f"{what}: {text} names no datastore")
        folder = datastores.folder(match["name"])
        path = Path(os.path.normpath(folder / match["path"].lstrip("/")))
        if not path.is_relative_to(folder):  # a path in a datastore stays in it, as in Azure
            raise UsageError(f"{what}: {text} leaves the datastore (its path climbs out with ..)")
        return path
    if text.startswith("file://"):
        text = text[len("file://"):]
    if text.startswith(("azureml:", "azureml://")):
        raise UsageError(f"{what}: {text} is a registered Azure ML asset (or a registry, workspace or job "
                         "URI), which only Azure can resolve; point it at a local path or an "
                         "azureml://datastores/<name>/paths/<path> URI")
    if re.match(r"^[a-z][a-z0-9+.-]*://", text):
        raise UsageError(f"{what}: {text} is a web or storage URL; download it and give the local path")
    path = Path(text).expanduser()
    return (path if path.is_absolute() else base / path).resolve()
