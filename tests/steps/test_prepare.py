import pytest

from steps import prepare_step
from steps.prepare import copy_files, iter_files


def test_copies_every_file_keeping_relative_paths(tmp_path):
    source = tmp_path / "store"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("A")
    (source / "sub" / "b.txt").write_text("B")
    (source / ".hidden").write_text("H")
    assert copy_files(source, tmp_path / "out") == 2
    assert (tmp_path / "out" / "sub" / "b.txt").read_text() == "B"
    assert [str(p) for p in iter_files(tmp_path / "out")] == ["a.txt", "sub/b.txt"]


def test_refuses_a_non_empty_output(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stale.txt").write_text("old")
    with pytest.raises(FileExistsError):
        copy_files(tmp_path / "store", tmp_path / "out")


def test_step_reports_a_missing_source_with_exit_2(tmp_path, capsys):
    assert prepare_step.main(["--source-dir", str(tmp_path / "nope"), "--output", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_datastore_credentials_become_a_connection_string():
    key = prepare_step.datastore_connection_string("https", "acct", "core.chinacloudapi.cn", "k3y==", None)
    assert key == ("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=k3y==;"
                   "EndpointSuffix=core.chinacloudapi.cn")
    sas = prepare_step.datastore_connection_string("", "acct", "", None, "?sv=1&sig=x")
    assert sas == ("DefaultEndpointsProtocol=https;AccountName=acct;SharedAccessSignature=sv=1&sig=x;"
                   "EndpointSuffix=core.windows.net")


def test_step_downloads_from_a_datastore_with_the_blob_code(azurite, tmp_path, monkeypatch):
    """The Azure branch, with the datastore lookup replaced by Azurite's account (no workspace here)."""
    import uuid

    from azure.storage.blob import ContainerClient

    from tests.azurite import connection_string

    container = f"prep-{uuid.uuid4().hex[:10]}"
    client = ContainerClient.from_connection_string(connection_string(azurite), container)
    client.create_container()
    client.upload_blob("raw/a.txt", b"A")
    client.upload_blob("raw/sub/b.txt", b"B")
    client.upload_blob("other/c.txt", b"C")

    def download(name, prefix, output):
        from orchestration.cloud.blob_store import container_for, download_prefix
        from orchestration.settings import load_settings

        settings = load_settings(env_file=None, AZURE_STORAGE_CONNECTION_STRING=connection_string(azurite),
                                 AML_BLOB_CONTAINER_NAME=container)
        return download_prefix(container_for(settings), prefix, output).transferred

    monkeypatch.setattr(prepare_step, "download_from_datastore", download)
    assert prepare_step.main(["--datastore", "ds", "--prefix", "raw", "--output", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "a.txt").read_bytes() == b"A"
    assert (tmp_path / "o" / "sub" / "b.txt").read_bytes() == b"B"
    assert not (tmp_path / "o" / "c.txt").exists()
