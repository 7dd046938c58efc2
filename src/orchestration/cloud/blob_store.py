"""Blob storage for the raw files: `make upload` sends a folder to the datastore's container. No Azure ML.

Uses azure-storage-blob, with the account name and key or, when set, AZURE_STORAGE_CONNECTION_STRING
(which is how the tests point it at the Azurite emulator). Uploads are concurrent, idempotent — a blob whose
Content-MD5 already matches the local file is not rewritten — and retried on transient errors by the SDK's
retry policy. No message ever carries the account key or the connection string. "Unchanged" means the
stored Content-MD5 property matches: a blob rewritten by another tool that kept the old property is not
detected (upload it again after deleting it, or use a new INPUT_DIR). (In Azure ML the steps
read the datastore folder as a mounted input: their code never handles a storage credential.)
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from azure.core.exceptions import (
    AzureError, ClientAuthenticationError, ResourceExistsError, ServiceRequestError,
)
from azure.storage.blob import ContainerClient, ContentSettings, ExponentialRetry
from tqdm import tqdm

from orchestration.errors import SettingsError
from orchestration.settings import AZURE_STORAGE, Settings
from steps.prepare import iter_files

log = logging.getLogger(__name__)

RETRIES = 3  # retries of the SDK's exponential policy for transient errors: an unreachable account is
CONNECTION_TIMEOUT = 10  # reported within about half a minute
WORKERS = 8
T = TypeVar("T")


class BlobStoreError(Exception):
    """A storage problem explained for the user; never carries a secret."""


@dataclass(frozen=True)
class Transfer:
    transferred: int  # files uploaded
    skipped: int  # files already identical
    bytes: int


def container_for(settings: Settings) -> ContainerClient:
    """The container AML_BLOB_CONTAINER_NAME, reached with the connection string or the account key.

    Raises:
        SettingsError: naming the missing variables when neither way is configured.
    """
    connection = settings.azure_storage_connection_string.get_secret_value()
    # The SDK's default backoff starts at 15 s and triples: an unreachable account stayed silent for
    # 87 s here. 1 s doubling (about 1, 3 and 5 s) still rides out a transient error.
    policy = ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=RETRIES)
    options = {"retry_policy": policy, "connection_timeout": CONNECTION_TIMEOUT}
    if connection:
        try:
            return ContainerClient.from_connection_string(
                connection, settings.aml_blob_container_name, **options
            )
        except ValueError:  # its message may quote the string: never shown
            raise SettingsError(["AZURE_STORAGE_CONNECTION_STRING: expected `Key=value;` pairs with "
                                 "AccountName and AccountKey, or BlobEndpoint and SharedAccessSignature "
                                 "(value hidden)"]) from None
    settings.require(*AZURE_STORAGE)
    return ContainerClient(
        f"https://{settings.aml_storage_account_name}.blob.core.windows.net",
        settings.aml_blob_container_name,
        credential=settings.aml_storage_account_key.get_secret_value(),
        **options,
    )


def _explain(container: ContainerClient, exc: AzureError) -> BlobStoreError:
    where = f"container {container.container_name!r} at {container.primary_hostname}"
    status = getattr(exc, "status_code", None)
    if isinstance(exc, ClientAuthenticationError) or status == 403:
        return BlobStoreError(
            f"storage refused the credentials for {where}: check AML_STORAGE_ACCOUNT_KEY "
            "(or AZURE_STORAGE_CONNECTION_STRING)"
        )
    if isinstance(exc, ServiceRequestError):
        return BlobStoreError(f"cannot reach {where} (after {RETRIES} retries)")
    code = getattr(exc, "error_code", None) or type(exc).__name__
    return BlobStoreError(f"storage error {code} for {where}")


def md5_of(path: Path) -> bytes:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.digest()


def folder_prefix(prefix: str) -> str:
    """`raw` -> `raw/`: what names below a folder start with ('' for the container's root)."""
    stem = prefix.strip("/")
    return f"{stem}/" if stem else ""


def blob_name(prefix: str, relative: Path) -> str:
    """`prefix/relative` with forward slashes, as blob names are. The service stores a backslash in a
    name as a slash too, so a local `a\\b.txt` becomes `a/b.txt`, and a re-upload recognises it."""
    return folder_prefix(prefix) + relative.as_posix().replace("\\", "/")


def _run_all(work: Callable[[T], int], items: Iterable[T], total: int, what: str) -> int:
    """Runs `work` on every item with WORKERS threads and a progress bar; returns the sum of results."""
    done = 0
    with ThreadPoolExecutor(WORKERS) as pool, tqdm(total=total, unit="file", desc=what, disable=None) as bar:
        for result in pool.map(work, items):
            done += result
            bar.update()
    return done


def ensure_container(container: ContainerClient) -> None:
    try:
        container.create_container()
        log.info("created container %s", container.container_name)
    except ResourceExistsError:
        pass


def existing_md5s(container: ContainerClient, prefix: str) -> dict[str, bytes]:
    """Content-MD5 of every blob below `prefix`."""
    listing = container.list_blobs(name_starts_with=folder_prefix(prefix) or None)
    return {b.name: bytes(b.content_settings.content_md5 or b"") for b in listing}


def upload_folder(container: ContainerClient, source: Path, prefix: str) -> Transfer:
    """Uploads every file below `source` to `prefix/<relative path>`; unchanged blobs are skipped."""
    if not source.is_dir():
        raise BlobStoreError(f"{source} is not a folder; run `make data` first")
    try:
        ensure_container(container)
        existing = existing_md5s(container, prefix)
        files = list(iter_files(source))
        plan = []
        for relative in files:
            checksum = md5_of(source / relative)
            name = blob_name(prefix, relative)
            if existing.get(name) != checksum:
                plan.append((source / relative, name, checksum))

        def upload(item: tuple[Path, str, bytes]) -> int:
            path, name, checksum = item
            with path.open("rb") as handle:
                container.upload_blob(
                    name, handle, overwrite=True, content_settings=ContentSettings(content_md5=checksum)
                )
            return path.stat().st_size

        size = _run_all(upload, plan, len(plan), "upload")
    except BlobStoreError:
        raise
    except AzureError as exc:
        raise _explain(container, exc) from None
    return Transfer(transferred=len(plan), skipped=len(files) - len(plan), bytes=size)
