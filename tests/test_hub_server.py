"""Tests of the ``HubServer`` Hub test double, driven by the real ``huggingface_hub`` client over HTTP.

How the client is made to use plain LFS (no Xet) against the local server:

* ``HF_HUB_DISABLE_XET=1``, ``HF_HUB_DISABLE_TELEMETRY=1`` and a temporary ``HF_HOME`` are exported at the
  very top of this module, before ``huggingface_hub`` is imported (its constants are read at import time).
* Because a conftest may already have imported ``huggingface_hub``, the autouse ``_client_env`` fixture
  also patches ``huggingface_hub.constants`` at runtime (``configure_hf_client``): ``is_xet_available()``
  reads ``constants.HF_HUB_DISABLE_XET`` at call time, so uploads take the preupload -> LFS batch -> PUT ->
  verify -> commit path.
* Every ``HfApi`` / ``snapshot_download`` / ``hf_hub_download`` call passes ``endpoint=server.url``.
"""

from __future__ import annotations

import os
import tempfile

os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="hf-home-test-hub-server-")
os.environ.pop("HF_TOKEN", None)

import hashlib
import json
import random
import time
from pathlib import Path

import httpx2
import pytest
from hubserver import DEFAULT_TOKEN, DEFAULT_USER, HubServer, configure_hf_client, git_blob_sha1
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    ModelCard,
    ModelCardData,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    BadRequestError,
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

MIB = 1024 * 1024
REPO = f"{DEFAULT_USER}/demo-model"


# ------------------------------------------------------------------------------------------ helpers


@pytest.fixture(autouse=True)
def _client_env(hub_server: HubServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Configure the client for the server at runtime (see module docstring)."""
    configure_hf_client(hub_server.url, monkeypatch, tmp_path / "default-cache")


@pytest.fixture
def api(hub_server: HubServer) -> HfApi:
    """Authenticated client."""
    return HfApi(endpoint=hub_server.url, token=DEFAULT_TOKEN)


@pytest.fixture
def repo(api: HfApi) -> str:
    """A fresh public model repo owned by the default user."""
    api.create_repo(REPO)
    return REPO


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _rand(size: int, seed: int) -> bytes:
    """Deterministic pseudo-random (binary) bytes."""
    return random.Random(seed).randbytes(size)


def _folder_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """Small text files (some nested) plus three 11 MiB binary files and a 10.5 MiB text file."""
    root = tmp_path / "export"
    _write(root / "config.json", b'{"num_classes": 3}\n')
    _write(root / "labels.txt", b"background\nroad\nsky\n")
    _write(root / "nested" / "deep" / "notes.md", b"# notes\n")
    _write(root / "empty.txt", b"")
    for i in range(3):
        _write(root / "weights" / f"shard-{i}.dat", _rand(11 * MIB, seed=i))
    _write(root / "big-log.txt", b"step loss\n" * (1_100_000))
    return root


# ------------------------------------------------------------------------------------------ repos & auth


def test_create_repo_exist_ok_and_auth_errors(hub_server: HubServer, api: HfApi) -> None:
    url = api.create_repo(REPO)
    assert url.repo_id == REPO and url.repo_type == "model" and url.startswith(hub_server.url)
    assert api.create_repo(REPO, exist_ok=True) == url

    with pytest.raises(HfHubHTTPError) as conflict:
        api.create_repo(REPO)
    assert conflict.value.response.status_code == 409

    anonymous = HfApi(endpoint=hub_server.url, token=False)
    with pytest.raises(HfHubHTTPError) as unauthenticated:
        anonymous.create_repo(f"{DEFAULT_USER}/other")
    assert unauthenticated.value.response.status_code == 401

    with pytest.raises(HfHubHTTPError) as bad_token:
        HfApi(endpoint=hub_server.url, token="hf_not_a_token").create_repo(f"{DEFAULT_USER}/other")
    assert bad_token.value.response.status_code == 401
    assert "Invalid credentials" in str(bad_token.value)

    with pytest.raises(HfHubHTTPError) as forbidden:
        api.create_repo("someone-else/model")
    assert forbidden.value.response.status_code == 403

    assert api.repo_exists(REPO) and not api.repo_exists(f"{DEFAULT_USER}/nope")


def test_org_namespace_and_write_permissions(hub_server: HubServer, api: HfApi) -> None:
    api.create_repo("hub-test-org/shared", repo_type="dataset")
    hub_server.add_user("mallory", "hf_mallory")
    mallory = HfApi(endpoint=hub_server.url, token="hf_mallory")
    with pytest.raises(HfHubHTTPError) as forbidden:
        mallory.upload_file(
            path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="hub-test-org/shared", repo_type="dataset"
        )
    assert forbidden.value.response.status_code == 403
    api.upload_file(path_or_fileobj=b"y\n", path_in_repo="y.txt", repo_id="hub-test-org/shared", repo_type="dataset")
    assert hub_server.list_files("hub-test-org/shared", repo_type="dataset").keys() == {".gitattributes", "y.txt"}


def test_private_repo_is_invisible_to_others(hub_server: HubServer, api: HfApi, tmp_path: Path) -> None:
    api.create_repo(REPO, private=True)
    api.upload_file(path_or_fileobj=b"secret\n", path_in_repo="secret.txt", repo_id=REPO)
    assert api.model_info(REPO).private is True

    anonymous = HfApi(endpoint=hub_server.url, token=False)
    with pytest.raises(RepositoryNotFoundError) as not_found:
        anonymous.model_info(REPO)
    assert not_found.value.response.status_code == 404
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(REPO, "secret.txt", endpoint=hub_server.url, token=False, cache_dir=tmp_path / "c1")

    hub_server.add_user("eve", "hf_eve")
    eve = HfApi(endpoint=hub_server.url, token="hf_eve")
    with pytest.raises(RepositoryNotFoundError):
        eve.model_info(REPO)

    api.update_repo_settings(REPO, private=False)
    assert eve.model_info(REPO).private is False and anonymous.file_exists(REPO, "secret.txt")
    api.update_repo_settings(REPO, private=True)
    assert not anonymous.repo_exists(REPO)
    with pytest.raises(BadRequestError, match="Unsupported settings"):
        api.update_repo_settings(REPO, gated="auto")  # No gating in the test double.

    path = hf_hub_download(REPO, "secret.txt", endpoint=hub_server.url, token=DEFAULT_TOKEN, cache_dir=tmp_path / "c2")
    assert Path(path).read_bytes() == b"secret\n"


# ------------------------------------------------------------------------------------------ uploads & downloads


def test_upload_folder_mixed_then_snapshot_is_byte_identical(
    hub_server: HubServer, api: HfApi, repo: str, mixed_folder: Path, tmp_path: Path
) -> None:
    local = _folder_files(mixed_folder)
    lfs_paths = {"weights/shard-0.dat", "weights/shard-1.dat", "weights/shard-2.dat", "big-log.txt"}

    info = api.upload_folder(repo_id=repo, folder_path=mixed_folder, commit_message="export v1")

    assert len(info.oid) == 40 and hub_server.commits_created == 1
    assert hub_server.bytes_uploaded == sum(len(local[p]) for p in lfs_paths)
    assert hub_server.count_requests("PUT", r"^/_lfs/upload/") == len(lfs_paths)
    tree = {f.path: f for f in api.list_repo_tree(repo, recursive=True) if hasattr(f, "blob_id")}
    assert {p for p, f in tree.items() if f.lfs is not None} == lfs_paths
    assert tree["config.json"].lfs is None and tree["empty.txt"].size == 0

    snapshot = Path(snapshot_download(repo, endpoint=hub_server.url, token=DEFAULT_TOKEN, cache_dir=tmp_path / "cache"))
    remote = _folder_files(snapshot)
    assert remote.pop(".gitattributes").startswith(b"*.7z filter=lfs")
    assert remote == local

    single = hf_hub_download(repo, "weights/shard-1.dat", endpoint=hub_server.url, cache_dir=tmp_path / "c2")
    assert Path(single).read_bytes() == local["weights/shard-1.dat"]


def test_republish_same_content_uploads_zero_lfs_bytes(
    hub_server: HubServer, api: HfApi, repo: str, mixed_folder: Path
) -> None:
    api.upload_folder(repo_id=repo, folder_path=mixed_folder)
    head = hub_server.revision_sha(repo)
    hub_server.reset_stats()

    api.upload_folder(repo_id=repo, folder_path=mixed_folder)  # identical: no-op, no commit
    assert hub_server.bytes_uploaded == 0 and hub_server.commits_created == 0
    assert hub_server.revision_sha(repo) == head

    (mixed_folder / "labels.txt").write_bytes(b"background\nroad\nsky\ncar\n")
    api.upload_folder(repo_id=repo, folder_path=mixed_folder)  # one small change: one commit, 0 LFS bytes
    assert hub_server.bytes_uploaded == 0 and hub_server.commits_created == 1
    assert hub_server.count_requests("PUT") == 0
    assert hub_server.commit(repo).parents == (head,)


def test_preupload_lfs_files_then_create_commit(hub_server: HubServer, api: HfApi, repo: str, tmp_path: Path) -> None:
    weights = _rand(11 * MIB, seed=7)
    ops = [
        CommitOperationAdd("model/weights.dat", weights),
        CommitOperationAdd("model/config.json", b'{"a": 1}\n'),
    ]
    api.preupload_lfs_files(repo, additions=ops)
    assert hub_server.bytes_uploaded == len(weights)
    assert hub_server.commits_created == 0

    parent = hub_server.revision_sha(repo)
    info = api.create_commit(repo, operations=ops, commit_message="add model", parent_commit=parent)
    assert hub_server.bytes_uploaded == len(weights)  # nothing re-uploaded by create_commit
    assert hub_server.commits_created == 1

    commit, initial = hub_server.commit(repo), hub_server.commit(repo, parent)
    assert (commit.sha, commit.parents, initial.parents) == (info.oid, (parent,), ())
    assert commit.title == "add model" and commit.author == DEFAULT_USER
    assert initial.title == "initial commit"
    assert hub_server.read_file(repo, "model/weights.dat") == weights
    assert hub_server.list_files(repo)["model/weights.dat"].lfs is True

    hub_server.reset_stats()
    api.create_commit(
        repo,
        operations=[
            CommitOperationAdd("backup/weights.dat", weights),  # Already stored: no LFS upload.
            CommitOperationAdd("backup/config.json", b'{"a": 1}\n'),
        ],
        commit_message="copy",
    )
    files = hub_server.list_files(repo)
    assert files["backup/weights.dat"] == files["model/weights.dat"] and hub_server.bytes_uploaded == 0
    assert hub_server.read_file(repo, "backup/config.json") == b'{"a": 1}\n'


def test_parent_commit_conflict_and_create_pr_unsupported(hub_server: HubServer, api: HfApi, repo: str) -> None:
    stale = hub_server.revision_sha(repo)
    api.upload_file(path_or_fileobj=b"one\n", path_in_repo="a.txt", repo_id=repo)
    with pytest.raises(HfHubHTTPError) as conflict:
        api.upload_file(path_or_fileobj=b"two\n", path_in_repo="a.txt", repo_id=repo, parent_commit=stale)
    assert conflict.value.response.status_code == 412
    assert "A commit has happened since" in str(conflict.value)

    with pytest.raises(BadRequestError) as no_pr:
        api.upload_file(path_or_fileobj=b"three\n", path_in_repo="a.txt", repo_id=repo, create_pr=True)
    assert "create_pr" in str(no_pr.value)
    assert hub_server.read_file(repo, "a.txt") == b"one\n"


def test_commits_are_atomic_and_deletions(hub_server: HubServer, api: HfApi, repo: str, tmp_path: Path) -> None:
    files = {"a.txt": b"a", "dir/b.txt": b"b", "dir/c.txt": b"c"}
    api.upload_folder(repo_id=repo, folder_path=_write_tree(tmp_path / "tree", files))
    head = hub_server.revision_sha(repo)
    with pytest.raises(EntryNotFoundError):
        api.create_commit(
            repo,
            operations=[CommitOperationAdd("new.txt", b"new"), CommitOperationDelete("missing.txt")],
            commit_message="half-valid",
        )
    assert hub_server.revision_sha(repo) == head and "new.txt" not in hub_server.list_files(repo)

    api.delete_folder("dir", repo_id=repo)
    api.delete_file("a.txt", repo_id=repo)
    assert api.list_repo_files(repo) == [".gitattributes"]


def _write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        _write(root / rel, data)
    return root


# ------------------------------------------------------------------------------------------ refs & listing


def test_branch_tag_and_snapshot_at_revision(hub_server: HubServer, api: HfApi, repo: str, tmp_path: Path) -> None:
    v1 = api.upload_file(path_or_fileobj=b"v1\n", path_in_repo="VERSION", repo_id=repo).oid
    api.create_tag(repo, tag="v1.0", tag_message="first release")
    api.create_branch(repo, branch="dev")
    with pytest.raises(HfHubHTTPError) as exists:
        api.create_branch(repo, branch="dev")
    assert exists.value.response.status_code == 409
    api.create_branch(repo, branch="dev", exist_ok=True)
    v2 = api.upload_file(path_or_fileobj=b"v2\n", path_in_repo="VERSION", repo_id=repo).oid
    api.upload_file(path_or_fileobj=b"dev\n", path_in_repo="DEV", repo_id=repo, revision="dev")

    def snap(revision: str) -> dict[str, bytes]:
        cache = tmp_path / f"cache-{revision}"
        path = snapshot_download(repo, revision=revision, endpoint=hub_server.url, cache_dir=cache)
        files = _folder_files(Path(path))
        files.pop(".gitattributes")
        return files

    assert snap("v1.0") == {"VERSION": b"v1\n"}
    assert snap(v1) == {"VERSION": b"v1\n"}
    assert snap("main") == {"VERSION": b"v2\n"}
    assert snap("dev") == {"VERSION": b"v1\n", "DEV": b"dev\n"}

    refs = api.list_repo_refs(repo)
    assert {b.name: b.target_commit for b in refs.branches} == {"main": v2, "dev": hub_server.revision_sha(repo, "dev")}
    assert [(t.name, t.ref, t.target_commit) for t in refs.tags] == [("v1.0", "refs/tags/v1.0", v1)]
    assert refs.converts == []


def test_list_repo_files_tree_and_model_info(hub_server: HubServer, api: HfApi, repo: str, tmp_path: Path) -> None:
    readme = b"---\nlicense: mit\n---\n# Demo\n"
    files = {"a.txt": b"a", "d/b.txt": b"b", "d/e/c.bin": b"\x00\x01", "README.md": readme}
    api.upload_folder(repo_id=repo, folder_path=_write_tree(tmp_path / "tree", files))
    assert api.list_repo_files(repo) == [".gitattributes", "README.md", "a.txt", "d/b.txt", "d/e/c.bin"]
    top = {e.path: type(e).__name__ for e in api.list_repo_tree(repo)}
    assert top == {".gitattributes": "RepoFile", "README.md": "RepoFile", "a.txt": "RepoFile", "d": "RepoFolder"}
    everything = {e.path: e for e in api.list_repo_tree(repo, recursive=True)}
    assert type(everything["d/e"]).__name__ == "RepoFolder" and everything["a.txt"].size == 1
    assert everything["d/e/c.bin"].lfs is not None and everything["d/b.txt"].lfs is None
    with pytest.raises(BadRequestError, match="expand"):
        list(api.list_repo_tree(repo, expand=True))

    info = api.model_info(repo, files_metadata=True)
    siblings = {s.rfilename: s for s in info.siblings}
    assert siblings["d/e/c.bin"].lfs.sha256 == hashlib.sha256(b"\x00\x01").hexdigest()
    assert info.sha == hub_server.revision_sha(repo) and info.card_data.license == "mit"


def test_model_card_push_and_load_round_trip(hub_server: HubServer, api: HfApi, repo: str) -> None:
    card = ModelCard.from_template(
        ModelCardData(license="apache-2.0", library_name="keras", tags=["segmentation", "beam"]),
        model_id="demo-model",
    )
    card.push_to_hub(repo, token=DEFAULT_TOKEN)
    assert hub_server.count_requests("POST", r"^/api/validate-yaml$") >= 1

    loaded = ModelCard.load(repo, token=DEFAULT_TOKEN)
    assert loaded.data.license == "apache-2.0" and loaded.data.tags == ["segmentation", "beam"]
    assert str(loaded) == str(card)
    info = api.model_info(repo)
    assert info.card_data.license == "apache-2.0" and info.library_name == "keras"
    assert "segmentation" in info.tags

    with pytest.raises(ValueError, match="Invalid metadata"):
        api.upload_file(path_or_fileobj=b"---\nlicense: [unclosed\n---\n# x\n", path_in_repo="README.md", repo_id=repo)


def test_missing_revision_and_entry(hub_server: HubServer, api: HfApi, repo: str, tmp_path: Path) -> None:
    api.upload_file(path_or_fileobj=b"x\n", path_in_repo="x.txt", repo_id=repo)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo, "x.txt", revision="no-such-branch", endpoint=hub_server.url, cache_dir=tmp_path)
    with pytest.raises(RevisionNotFoundError):
        snapshot_download(repo, revision="v9", endpoint=hub_server.url, cache_dir=tmp_path)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo, "missing.txt", endpoint=hub_server.url, cache_dir=tmp_path)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(f"{DEFAULT_USER}/nope", "x.txt", endpoint=hub_server.url, cache_dir=tmp_path)
    assert not api.file_exists(repo, "missing.txt") and api.file_exists(repo, "x.txt")


def test_space_and_dataset_repos(hub_server: HubServer, api: HfApi, tmp_path: Path) -> None:
    space = f"{DEFAULT_USER}/demo-space"
    url = api.create_repo(space, repo_type="space", space_sdk="gradio")
    assert url.repo_type == "space" and "/spaces/" in url
    app = b"import gradio as gr\n\ngr.Interface(lambda x: x, 'text', 'text').launch()\n"
    api.upload_file(path_or_fileobj=app, path_in_repo="app.py", repo_id=space, repo_type="space")
    path = hf_hub_download(space, "app.py", repo_type="space", endpoint=hub_server.url, cache_dir=tmp_path)
    assert Path(path).read_bytes() == app
    assert api.space_info(space).sdk == "gradio"
    with httpx2.Client() as client:
        no_sdk = client.post(
            f"{hub_server.url}/api/repos/create",
            headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
            json={"name": "no-sdk", "type": "space"},
        )
    assert no_sdk.status_code == 400 and "sdk" in no_sdk.json()["error"]

    dataset = f"{DEFAULT_USER}/demo-data"
    api.create_repo(dataset, repo_type="dataset")
    blob = _rand(11 * MIB, seed=3)
    api.upload_file(path_or_fileobj=blob, path_in_repo="data/train.tfrecord", repo_id=dataset, repo_type="dataset")
    path = hf_hub_download(
        dataset, "data/train.tfrecord", repo_type="dataset", endpoint=hub_server.url, cache_dir=tmp_path
    )
    assert Path(path).read_bytes() == blob
    assert hub_server.count_requests("POST", r"^/datasets/.*\.git/info/lfs/objects/batch$") == 1


# ------------------------------------------------------------------------------------------ LFS protocol details


def test_lfs_verify_recomputes_sha256_and_size(hub_server: HubServer, repo: str) -> None:
    auth = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    claimed = b"the real content" * 1000
    oid = hashlib.sha256(claimed).hexdigest()
    batch_url = f"{hub_server.url}/{repo}.git/info/lfs/objects/batch"
    with httpx2.Client() as client:
        batch = client.post(
            batch_url,
            headers=auth,
            json={"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(claimed)}]},
        ).json()
        actions = batch["objects"][0]["actions"]
        upload_url, verify_url = actions["upload"]["href"], actions["verify"]["href"]

        tampered = upload_url.replace("sig=", "sig=0")
        assert client.put(tampered, content=claimed).status_code == 403
        assert client.put(upload_url, content=b"something else").status_code == 200  # S3 accepts anything
        bad = client.post(verify_url, headers=auth, json={"oid": oid, "size": len(claimed)})
        assert bad.status_code == 422 and "Verification failed" in bad.json()["error"]

        commit_url = f"{hub_server.url}/api/models/{repo}/commit/main"
        lfs_op = {"path": "w.bin", "algo": "sha256", "oid": oid, "size": len(claimed)}
        ndjson = b"".join(
            json.dumps(line).encode() + b"\n"
            for line in ({"key": "header", "value": {"summary": "add w.bin"}}, {"key": "lfsFile", "value": lfs_op})
        )
        ndjson_headers = {**auth, "Content-Type": "application/x-ndjson"}
        refused = client.post(commit_url, headers=ndjson_headers, content=ndjson)
        assert refused.status_code == 422

        assert client.put(upload_url, content=claimed).status_code == 200
        assert client.post(verify_url, headers=auth, json={"oid": oid, "size": len(claimed) + 1}).status_code == 422
        assert client.put(upload_url, content=claimed).status_code == 200
        assert client.post(verify_url, headers=auth, json={"oid": oid, "size": len(claimed)}).status_code == 200
        assert client.post(commit_url, headers=ndjson_headers, content=ndjson).status_code == 200

        objects = [{"oid": oid, "size": len(claimed)}]
        again = client.post(batch_url, headers=auth, json={"operation": "upload", "objects": objects})
        assert "actions" not in again.json()["objects"][0]
        assert client.post(batch_url, json={"operation": "upload", "objects": []}).status_code == 401
    assert hub_server.read_file(repo, "w.bin") == claimed


def test_multipart_lfs_upload(hub_server: HubServer, api: HfApi, repo: str, tmp_path: Path) -> None:
    hub_server.multipart_chunk_size = 4 * MIB
    blob = _rand(11 * MIB, seed=11)
    api.upload_file(path_or_fileobj=blob, path_in_repo="weights.dat", repo_id=repo)
    assert hub_server.count_requests("PUT", r"^/_lfs/upload/[0-9a-f]{64}/part/\d+$", 200) == 3
    assert hub_server.count_requests("POST", r"^/_lfs/upload/[0-9a-f]{64}$", 200) == 1
    assert hub_server.max_concurrent_uploads == 1  # The client sends the parts of a file one after another.
    path = hf_hub_download(repo, "weights.dat", endpoint=hub_server.url, cache_dir=tmp_path)
    assert Path(path).read_bytes() == blob


def test_part_etags_are_content_derived_and_checked_on_completion(hub_server: HubServer, repo: str) -> None:
    hub_server.multipart_chunk_size = MIB
    blob = _rand(2 * MIB + 5, seed=12)
    oid = hashlib.sha256(blob).hexdigest()
    auth = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    with httpx2.Client() as client:
        batch = client.post(
            f"{hub_server.url}/{repo}.git/info/lfs/objects/batch",
            headers=auth,
            json={
                "operation": "upload",
                "transfers": ["basic", "multipart"],
                "objects": [{"oid": oid, "size": len(blob)}],
            },
        ).json()
        assert batch["transfer"] == "multipart"
        upload = batch["objects"][0]["actions"]["upload"]
        header = upload["header"]
        assert header["chunk_size"] == str(MIB) and sorted(k for k in header if k.isdigit()) == ["1", "2", "3"]
        etags = [client.put(header[str(n)], content=blob[(n - 1) * MIB : n * MIB]).headers["ETag"] for n in (1, 2, 3)]
        again = client.put(header["1"], content=blob[:MIB]).headers["ETag"]
        assert again == etags[0] != etags[1] and len(set(etags)) == 3
        parts = [{"partNumber": n, "etag": e} for n, e in enumerate(etags, 1)]
        wrong = [{**parts[0], "etag": etags[1]}, *parts[1:]]
        assert client.post(upload["href"], json={"oid": oid, "parts": wrong}).status_code == 400
        assert client.post(upload["href"], json={"oid": oid, "parts": parts}).status_code == 200
        verify = batch["objects"][0]["actions"]["verify"]["href"]
        assert client.post(verify, headers=auth, json={"oid": oid, "size": len(blob)}).status_code == 200
    assert hub_server.max_concurrent_uploads == 1


def test_resolve_headers_and_range(hub_server: HubServer, api: HfApi, repo: str) -> None:
    blob = _rand(MIB, seed=5)
    api.upload_file(path_or_fileobj=blob, path_in_repo="w.bin", repo_id=repo)
    api.upload_file(path_or_fileobj=b"hello\n", path_in_repo="t.txt", repo_id=repo)
    head = hub_server.revision_sha(repo)
    with httpx2.Client() as client:
        lfs = client.head(f"{hub_server.url}/{repo}/resolve/main/w.bin")
        assert lfs.headers["X-Repo-Commit"] == head
        assert lfs.headers["X-Linked-Etag"].strip('"') == hashlib.sha256(blob).hexdigest()
        assert int(lfs.headers["X-Linked-Size"]) == len(blob) == int(lfs.headers["Content-Length"])
        regular = client.head(f"{hub_server.url}/{repo}/resolve/main/t.txt")
        assert regular.headers["ETag"].strip('"') == git_blob_sha1(b"hello\n")
        part = client.get(f"{hub_server.url}/{repo}/resolve/main/w.bin", headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == blob[10:20]
        assert part.headers["Content-Range"] == f"bytes 10-19/{len(blob)}"
        beyond = client.get(f"{hub_server.url}/{repo}/resolve/main/w.bin", headers={"Range": f"bytes={len(blob)}-"})
        assert beyond.status_code == 416
        missing = client.get(f"{hub_server.url}/{repo}/resolve/main/nope.txt")
        assert missing.status_code == 404 and missing.headers["X-Error-Code"] == "EntryNotFound"
        assert missing.headers["X-Repo-Commit"] == head


# ------------------------------------------------------------------------------------------ fault injection


def test_429_with_retry_after_on_lfs_put_is_retried(hub_server: HubServer, api: HfApi, repo: str) -> None:
    """``http_backoff`` retries the LFS PUT and waits Retry-After + 1 s (here 2 s)."""
    fault = hub_server.inject("PUT", r"^/_lfs/upload/", status=429, retry_after=1, times=1)
    blob = _rand(2 * MIB, seed=9)
    start = time.monotonic()
    api.upload_file(path_or_fileobj=blob, path_in_repo="w.bin", repo_id=repo)
    elapsed = time.monotonic() - start
    assert fault.hits == 1 and elapsed >= 1.9
    puts = [status for method, path, status in hub_server.requests if method == "PUT"]
    assert puts == [429, 200]
    assert hub_server.bytes_uploaded == len(blob)  # the 429-ed attempt is answered by the fault, not stored
    assert hub_server.read_file(repo, "w.bin") == blob


def test_429_on_resolve_get_is_retried_but_500_is_not(
    hub_server: HubServer, api: HfApi, repo: str, tmp_path: Path
) -> None:
    """The download GET retries 408/429 (honouring Retry-After) but raises on 5xx."""
    api.upload_file(path_or_fileobj=b"payload\n", path_in_repo="p.txt", repo_id=repo)
    hub_server.inject("GET", r"/resolve/.*/p\.txt$", status=429, retry_after=0, times=1)
    path = hf_hub_download(repo, "p.txt", endpoint=hub_server.url, cache_dir=tmp_path / "a")
    assert Path(path).read_bytes() == b"payload\n"
    gets = [s for m, p, s in hub_server.requests if m == "GET" and p.endswith("/p.txt")]
    assert gets == [429, 200]

    hub_server.inject("GET", r"/resolve/.*/p\.txt$", status=500, times=1)
    with pytest.raises(HfHubHTTPError) as server_error:
        hf_hub_download(repo, "p.txt", endpoint=hub_server.url, cache_dir=tmp_path / "b")
    assert server_error.value.response.status_code == 500


def test_500_on_commit_surfaces_as_http_error(hub_server: HubServer, api: HfApi, repo: str) -> None:
    head = hub_server.revision_sha(repo)
    hub_server.inject("POST", r"/commit/main$", status=500, times=1)
    with pytest.raises(HfHubHTTPError) as err:
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo)
    assert err.value.response.status_code == 500
    assert hub_server.count_requests("POST", r"/commit/main$") == 1  # create_commit is not retried
    assert hub_server.commits_created == 0 and hub_server.revision_sha(repo) == head


def test_dropped_connection_surfaces_as_connection_error(hub_server: HubServer, api: HfApi, repo: str) -> None:
    hub_server.inject("POST", r"/commit/main$", drop=True, times=1)
    with pytest.raises(httpx2.TransportError):
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo)
    assert ("POST", f"/api/models/{repo}/commit/main", 0) in hub_server.requests
    assert hub_server.commits_created == 0

    # A dropped LFS PUT goes through http_backoff, which retries transport errors.
    hub_server.inject("PUT", r"^/_lfs/upload/", drop=True, times=1)
    blob = _rand(MIB, seed=1)
    api.upload_file(path_or_fileobj=blob, path_in_repo="w.bin", repo_id=repo)
    assert [s for m, _, s in hub_server.requests if m == "PUT"] == [0, 200]


def test_truncated_download_is_resumed_with_range(hub_server: HubServer, api: HfApi, repo: str, tmp_path: Path) -> None:
    """A body cut mid-stream is resumed with ``Range`` (the client keeps what it wrote, in 10 MiB chunks)."""
    blob = _rand(12 * MIB, seed=2)
    api.upload_file(path_or_fileobj=blob, path_in_repo="w.bin", repo_id=repo)
    hub_server.inject("GET", r"/resolve/.*/w\.bin$", truncate_response_at=11 * MIB, times=1)
    path = hf_hub_download(repo, "w.bin", endpoint=hub_server.url, cache_dir=tmp_path)
    assert Path(path).read_bytes() == blob
    assert [s for m, p, s in hub_server.requests if m == "GET" and p.endswith("w.bin")] == [200, 206]
    assert hub_server.bytes_downloaded == 11 * MIB + 2 * MIB  # resumed from the 10 MiB already written


def test_latency_and_bandwidth_slow_requests_down(hub_server: HubServer, api: HfApi, repo: str) -> None:
    api.upload_file(path_or_fileobj=_rand(MIB, seed=4), path_in_repo="w.bin", repo_id=repo)
    url = f"{hub_server.url}/{repo}/resolve/main/w.bin"
    with httpx2.Client() as client:
        start = time.monotonic()
        client.get(url)
        fast = time.monotonic() - start

        hub_server.latency_s = 0.3
        start = time.monotonic()
        client.head(url)
        assert time.monotonic() - start >= 0.3
        hub_server.latency_s = 0.0

        hub_server.bandwidth_bytes_per_s = 2 * MIB
        start = time.monotonic()
        assert len(client.get(url).content) == MIB
        slow = time.monotonic() - start
    assert slow >= 0.4 and slow > fast

    start = time.monotonic()  # the cap applies to request bodies (LFS PUT) too
    api.upload_file(path_or_fileobj=_rand(MIB, seed=6), path_in_repo="w2.bin", repo_id=repo)
    assert time.monotonic() - start >= 0.4


def test_fixture_contract(hub_server: HubServer, hub_token: str, hub_client_env: HubServer, hub_api: HfApi) -> None:
    from huggingface_hub import constants

    assert hub_server.url.startswith("http://127.0.0.1:") and hub_token == DEFAULT_TOKEN
    assert hub_client_env is hub_server and hub_server.url == constants.ENDPOINT and constants.HF_HUB_DISABLE_XET
    assert hub_api.endpoint == hub_server.url and hub_api.create_repo("mine").repo_id == f"{DEFAULT_USER}/mine"
    with httpx2.Client() as client:
        assert client.post(f"{hub_server.url}/api/repos/create", json={"name": "x"}).status_code == 401
        unknown = client.get(f"{hub_server.url}/api/nothing-here")
        assert unknown.status_code == 404 and "X-Error-Code" not in unknown.headers


def test_server_context_manager_stops_cleanly() -> None:
    with HubServer() as server:
        url = server.url
        storage = server.storage_dir
        with httpx2.Client() as client:
            assert client.get(f"{url}/api/models/a/b").status_code == 404
    assert not storage.exists()
    with pytest.raises(httpx2.TransportError), httpx2.Client() as client:
        client.get(f"{url}/api/models/a/b")


# ------------------------------------------------------------------------------------------ Space hardware


FREE_USER, FREE_TOKEN = "free-tester", "hf_free_tester_token"


def test_a_free_account_pays_for_cpu_basic_but_not_for_zerogpu_or_static(hub_server: HubServer) -> None:
    hub_server.add_user(FREE_USER, FREE_TOKEN, plan="free")
    free = HfApi(endpoint=hub_server.url, token=FREE_TOKEN)
    for kwargs in ({"space_sdk": "gradio"}, {"space_sdk": "docker", "space_hardware": "cpu-basic"}):
        with pytest.raises(HfHubHTTPError) as caught:
            free.create_repo(f"{FREE_USER}/demo", repo_type="space", **kwargs)
        assert caught.value.response.status_code == 402
        assert "hosting Gradio and Docker Spaces on free cpu-basic requires a PRO subscription" in str(caught.value)
    with pytest.raises(HfHubHTTPError, match="PRO subscription or a payment method"):
        free.create_repo(f"{FREE_USER}/demo", repo_type="space", space_sdk="gradio", space_hardware="t4-small")
    free.create_repo(f"{FREE_USER}/static", repo_type="space", space_sdk="static")
    for name in ("zero-1", "zero-2"):
        free.create_repo(f"{FREE_USER}/{name}", repo_type="space", space_sdk="gradio", space_hardware="zero-a10g")
    with pytest.raises(HfHubHTTPError, match="up to 2 ZeroGPU Spaces") as caught:
        free.create_repo(f"{FREE_USER}/zero-3", repo_type="space", space_sdk="gradio", space_hardware="zero-a10g")
    assert caught.value.response.status_code == 402
    # Existing Space: exist_ok swallows the 402 (the client then checks that the repo exists), as on the Hub.
    free.create_repo(f"{FREE_USER}/zero-1", repo_type="space", space_sdk="gradio", exist_ok=True)
    with pytest.raises(HfHubHTTPError, match="requires a PRO subscription"):
        free.request_space_hardware(f"{FREE_USER}/zero-1", "cpu-basic")
    # A PRO account keeps cpu-basic, the default.
    pro = HfApi(endpoint=hub_server.url, token=DEFAULT_TOKEN)
    pro.create_repo(f"{DEFAULT_USER}/demo", repo_type="space", space_sdk="gradio")
    assert pro.get_space_runtime(f"{DEFAULT_USER}/demo").requested_hardware == "cpu-basic"


def test_a_zerogpu_space_without_a_spaces_gpu_function_is_a_runtime_error(hub_server: HubServer) -> None:
    api = HfApi(endpoint=hub_server.url, token=DEFAULT_TOKEN)
    space = f"{DEFAULT_USER}/zero"
    api.create_repo(space, repo_type="space", space_sdk="gradio", space_hardware="zero-a10g")
    assert api.get_space_runtime(space).stage == "NO_APP_FILE"
    readme = CommitOperationAdd("README.md", b"---\nsdk: gradio\napp_file: app.py\n---\n")
    plain = CommitOperationAdd("app.py", b"import gradio as gr\ngr.Interface(lambda x: x, 'text', 'text').launch()\n")
    api.create_commit(space, repo_type="space", operations=[readme, plain], commit_message="no GPU function")
    runtime = api.get_space_runtime(space)
    assert (runtime.stage, runtime.hardware, runtime.requested_hardware) == ("RUNTIME_ERROR", None, "zero-a10g")
    assert "@spaces.GPU" in runtime.raw["errorMessage"]
    decorated = CommitOperationAdd("app.py", b"import spaces\n\n@spaces.GPU\ndef warm():\n    pass\n")
    api.create_commit(space, repo_type="space", operations=[decorated], commit_message="with one")
    runtime = api.get_space_runtime(space)
    assert (runtime.stage, runtime.hardware) == ("RUNNING", "zero-a10g")
    assert hub_server.space_runtime(space)["stage"] == "RUNNING"
