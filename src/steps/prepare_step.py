"""Preparation step (PythonScriptStep in Azure ML; a plain command locally).

Brings the raw files from the datastore into the step's output folder: locally the datastore is a folder
(`--source-dir`); in Azure ML the files are downloaded from the blob datastore (`--datastore`, `--prefix`)
with the same code as `make upload`, refusing blob names that would escape the output folder.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

try:
    from steps.prepare import copy_files
except ImportError:  # Azure ML runs this file from a snapshot of src/ that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from steps.prepare import copy_files

log = logging.getLogger("preparation")


def datastore_connection_string(protocol: str, account: str, endpoint: str, key: str | None,
                                sas_token: str | None) -> str:
    """A storage connection string from a registered blob datastore's fields (key or SAS token)."""
    credential = f"AccountKey={key}" if key else f"SharedAccessSignature={(sas_token or '').lstrip('?')}"
    return (f"DefaultEndpointsProtocol={protocol or 'https'};AccountName={account};{credential};"
            f"EndpointSuffix={endpoint or 'core.windows.net'}")


def download_from_datastore(datastore_name: str, prefix: str, output: Path) -> int:
    """Inside an Azure ML run: the datastore's container, reached with its registered credentials."""
    from azureml.core import Run

    from orchestration.cloud.blob_store import container_for, download_prefix
    from orchestration.settings import load_settings

    store = Run.get_context().experiment.workspace.datastores[datastore_name]
    connection = datastore_connection_string(
        store.protocol, store.account_name, store.endpoint, store.account_key, store.sas_token
    )
    settings = load_settings(
        env_file=None, AZURE_STORAGE_CONNECTION_STRING=connection,
        AML_BLOB_CONTAINER_NAME=store.container_name,
    )
    return download_prefix(container_for(settings), prefix, output).transferred


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--source-dir", type=Path, help="local runs: the datastore folder")
    source.add_argument("--datastore", help="Azure ML: the registered blob datastore")
    parser.add_argument("--prefix", default="", help="Azure ML: the folder of the raw files in the container")
    parser.add_argument("--output", type=Path, required=True, help="the step's output folder")
    args, _ = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.datastore:
            count = download_from_datastore(args.datastore, args.prefix, args.output)
        else:
            count = copy_files(args.source_dir, args.output)
    except (FileNotFoundError, FileExistsError) as exc:
        log.error("%s", exc)
        return 2
    print(f"prepared {count} files in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
