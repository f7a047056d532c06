"""Tests of ``beam_seg.hub``: retries, one-line errors, commit splitting and exact, safely retried commits.

Calls go over HTTP to the ``HubServer`` test double with the real ``huggingface_hub`` client; faults are injected
on the server; our own backoff sleeps are recorded instead of slept.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace as dataclasses_replace

import httpx2
import pytest
from hubserver import DEFAULT_USER, git_blob_sha1, lfs_pointer

from beam_seg.hub import auth, commits, errors, lfs, repos, retry, versions
from beam_seg.hub import files as hub_files

REPO = f"{DEFAULT_USER}/helpers"
MIB = 1024 * 1024


class _Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _files(**contents: bytes) -> list[hub_files.LocalFile]:
    return [hub_files.local_file(path.replace("__", "/"), data) for path, data in contents.items()]


def _bytes_of(f: hub_files.LocalFile) -> bytes:
    assert f.data is not None
    return f.data


def _http_error(status: int, headers: dict[str, str] | None = None) -> Exception:
    from huggingface_hub.errors import HfHubHTTPError

    request = httpx2.Request("POST", "http://hub.invalid/api/x")
    return HfHubHTTPError(f"{status} error", response=httpx2.Response(status, headers=headers or {}, request=request))


# ------------------------------------------------------------------------------------------------ retries


@pytest.mark.parametrize(
    ("exc", "attempt", "expected"),
    [
        (_http_error(429, {"Retry-After": "7"}), 1, 7.0),
        (_http_error(503, {"Retry-After": "120"}), 1, 60.0),  # Capped at max_retry_after_s.
        (_http_error(500), 1, 1.0),
        (_http_error(502), 3, 4.0),
        (_http_error(504), 6, 8.0),
        (httpx2.ConnectError("refused"), 2, 2.0),
        (httpx2.RemoteProtocolError("dropped"), 1, 1.0),
        (_http_error(401), 1, None),
        (_http_error(403), 1, None),
        (_http_error(404), 1, None),
        (_http_error(412), 1, None),
        (ValueError("not an HTTP error"), 1, None),
        (_http_error(500), 10, None),  # Out of attempts.
    ],
)
def test_retry_delay_classifies_errors(exc, attempt, expected):
    assert retry.retry_delay(exc, attempt, retry.RetryPolicy(max_attempts=10)) == expected


def test_create_repo_is_retried_honouring_retry_after(hub_api, hub_client_env):
    server = hub_client_env
    server.inject(method="POST", path_regex=r"^/api/repos/create$", status=503, retry_after=2, times=2)
    sleeps = _Sleeps()
    url = retry.call_with_retry(lambda: hub_api.create_repo(REPO, exist_ok=True), what="create_repo", sleep=sleeps)
    assert url.endswith(REPO) and sleeps == [2.0, 2.0]
    assert server.count_requests("POST", "/api/repos/create") == 3


def test_final_errors_are_not_retried(hub_api, hub_client_env):
    server = hub_client_env
    server.inject(method="POST", path_regex=r"^/api/repos/create$", status=403, times=5)
    sleeps = _Sleeps()
    with pytest.raises(Exception) as info:
        retry.call_with_retry(lambda: hub_api.create_repo(REPO), what="create_repo", sleep=sleeps)
    assert retry.retry_delay(info.value, 1, retry.DEFAULT_RETRY) is None and sleeps == []


def test_retries_are_bounded(hub_api, hub_client_env):
    hub_client_env.inject(method="GET", path_regex=r"/refs$", status=500, times=50)
    hub_api.create_repo(REPO)
    sleeps = _Sleeps()
    with pytest.raises(Exception):
        retry.call_with_retry(
            lambda: hub_api.list_repo_refs(REPO), what="refs", sleep=sleeps, policy=retry.RetryPolicy(max_attempts=4)
        )
    assert sleeps == [1.0, 2.0, 4.0]


# ------------------------------------------------------------------------------------------------ error messages


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        (401, errors.AuthenticationError, ["HTTP 401", "HF_TOKEN"]),
        (403, errors.PermissionDeniedError, ["HTTP 403", "namespace 'hub-tester'"]),
        (404, errors.NotFoundError, ["HTTP 404"]),
        (503, errors.HubUnavailableError, ["HTTP 503", "after retrying"]),
        (409, errors.HubError, ["HTTP 409"]),
    ],
)
def test_errors_become_one_line_naming_the_repo(status, kind, words):
    error = errors.translate_error(_http_error(status), action="creating", repo_id=REPO)
    assert type(error) is kind and error.status == status
    text = str(error)
    assert "\n" not in text and REPO in text and all(w in text for w in words)


def test_network_errors_name_the_endpoint():
    error = errors.translate_error(
        httpx2.ConnectError("refused"), action="creating", repo_id=REPO, endpoint="http://x:1"
    )
    assert isinstance(error, errors.HubUnavailableError) and "http://x:1" in str(error) and REPO in str(error)


def test_the_token_is_scrubbed_from_messages(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_123456")
    assert "hf_secret_value_123456" not in str(errors.HubError("boom hf_secret_value_123456 here", repo_id=REPO))


def test_one_line_finds_the_hub_error_behind_beams_wrapping():
    inner = errors.AuthenticationError(f"the Hub rejected the token (HTTP 401) while creating model repo {REPO}")
    try:
        try:
            raise inner
        except errors.HubError as e:
            raise RuntimeError(f"{e} [while running 'PublishModel/UploadChunks']") from e
    except RuntimeError as outer:
        assert errors.one_line(outer) == str(inner)
    assert errors.one_line(ValueError("first\nsecond [while running 'X']")) == "first"


def test_missing_token_is_explained(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "none"))
    with pytest.raises(errors.MissingTokenError, match="export HF_TOKEN"):
        auth.require_token(REPO)


class _FakeSecretManager:
    """Stands in for google.cloud.secretmanager's client: Secret Manager cannot be reached from here (mocked)."""

    calls: list[str] = []
    secrets = {"projects/p/secrets/hf/versions/latest": b"hf_from_secret_manager_42\n"}

    def access_secret_version(self, *, name):
        from google.api_core import exceptions

        self.calls.append(name)
        if name not in self.secrets:
            raise exceptions.PermissionDenied(f"Permission 'secretmanager.versions.access' denied for {name}")
        return type("Response", (), {"payload": type("Payload", (), {"data": self.secrets[name]})()})()


@pytest.fixture
def fake_secret_manager(monkeypatch, tmp_path):
    from google.cloud import secretmanager
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "none"))
    monkeypatch.setattr(secretmanager, "SecretManagerServiceClient", _FakeSecretManager)
    _FakeSecretManager.calls = []
    return _FakeSecretManager


def test_a_token_secret_becomes_the_process_token_once(fake_secret_manager, monkeypatch):
    auth.use_token_secret("projects/p/secrets/hf")  # a bare secret means its latest version
    assert fake_secret_manager.calls == ["projects/p/secrets/hf/versions/latest"]
    assert auth.resolve_token() == "hf_from_secret_manager_42"
    assert errors.scrub("x hf_from_secret_manager_42 y") == "x hf_*** y"
    auth.use_token_secret("projects/p/secrets/hf")  # the process has a token now: nothing fetched again
    assert len(fake_secret_manager.calls) == 1
    monkeypatch.setenv("HF_TOKEN", "hf_local_token_123")  # a token already configured wins
    auth.use_token_secret("projects/p/secrets/other")
    assert len(fake_secret_manager.calls) == 1 and auth.resolve_token() == "hf_local_token_123"


def test_an_unreadable_token_secret_is_one_clear_line(fake_secret_manager):
    with pytest.raises(errors.MissingTokenError) as raised:
        auth.use_token_secret("projects/p/secrets/missing/versions/3")
    message = str(raised.value)
    assert "\n" not in message and "projects/p/secrets/missing/versions/3" in message
    assert "PermissionDenied" in message and "secretAccessor" in message
    with pytest.raises(ValueError, match="'gs://x' is not a Secret Manager secret"):
        auth.secret_version_name("gs://x")


def test_endpoint_is_read_at_call_time(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/")
    assert auth.resolve_endpoint() == "http://127.0.0.1:9"
    assert auth.make_api().endpoint == "http://127.0.0.1:9"
    monkeypatch.delenv("HF_ENDPOINT")
    assert auth.resolve_endpoint() == auth.DEFAULT_ENDPOINT


# ------------------------------------------------------------------------------------------------ splitting


def _ops(n: int, size: int = 10) -> list[commits.FileOperation]:
    return [commits.FileOperation(f"f{i:03d}", hub_files.local_file(f"f{i:03d}", b"x" * size)) for i in range(n)]


def test_commits_are_split_by_file_count():
    batches = commits.split_operations(_ops(250))
    assert [len(b) for b in batches] == [100, 100, 50]
    assert [op.path for b in batches for op in b] == [op.path for op in _ops(250)]
    assert len(commits.split_operations(_ops(100))) == 1 and commits.split_operations([]) == []


def test_commits_are_split_by_inline_payload():
    ops = _ops(5, size=3000)  # 4000 bytes each once base64-encoded.
    assert [len(b) for b in commits.split_operations(ops, max_inline_bytes=8000)] == [2, 2, 1]
    big = [commits.FileOperation("big.bin", hub_files.LocalFile("big.bin", 20 * MIB, "0" * 64, None, "/x"))]
    assert commits.split_operations(big * 3, max_inline_bytes=1) == [big * 3]  # LFS content is not inline.
    deletes = [commits.FileOperation(f"d{i}", None) for i in range(3)]
    assert commits.split_operations(deletes, max_inline_bytes=0) == [deletes]


# ------------------------------------------------------------------------------------------------ files


def test_blob_ids_match_the_hubs(tmp_path):
    small, big = b"small text\n", bytes(range(256)) * (11 * 4096)  # big >= 10 MiB: always LFS.
    path = tmp_path / "big.bin"
    path.write_bytes(big)
    f_small, f_big = hub_files.local_file("a.txt", small), hub_files.local_file("big.bin", str(path))
    assert f_small.git_sha1 == git_blob_sha1(small) and f_small.sha256 == hashlib.sha256(small).hexdigest()
    assert f_small.blob_ids == {git_blob_sha1(small), git_blob_sha1(lfs_pointer(f_small.sha256, len(small)))}
    assert f_big.git_sha1 is None and f_big.source == str(path) and f_big.data is None
    assert f_big.blob_ids == {git_blob_sha1(lfs_pointer(hashlib.sha256(big).hexdigest(), len(big)))}


# ------------------------------------------------------------------------------------------------ commits


def test_commit_tree_is_exact_and_idempotent(hub_api, hub_client_env):
    server = hub_client_env
    hub_api.create_repo(REPO)
    first = _files(**{"a.txt": b"a\n", "b.txt": b"b\n", "dir__c.bin": b"\x00" * 100})
    result = commits.commit_tree(hub_api, repo_id=REPO, files=first, content=_bytes_of, message="one")
    assert result.commits_created == 1 and set(result.changed) == {"a.txt", "b.txt", "dir/c.bin"}
    again = commits.commit_tree(hub_api, repo_id=REPO, files=first, content=_bytes_of, message="two")
    assert again.commits_created == 0 and again.sha == result.sha and not again.changed
    second = _files(**{"a.txt": b"a\n", "b.txt": b"B\n"})
    third = commits.commit_tree(hub_api, repo_id=REPO, files=second, content=_bytes_of, message="three")
    assert third.changed == ("b.txt",) and third.unchanged == ("a.txt",) and third.deleted == ("dir/c.bin",)
    assert set(server.list_files(REPO)) == {".gitattributes", "a.txt", "b.txt"}
    assert server.commits_created == 2


def test_a_commit_that_landed_is_not_sent_twice(hub_api, hub_client_env):
    server = hub_client_env
    hub_api.create_repo(REPO)
    server.inject(method="POST", path_regex=r"/commit/main$", truncate_response_at=0)
    sleeps = _Sleeps()
    result = commits.commit_tree(
        hub_api, repo_id=REPO, files=_files(**{"a.txt": b"a"}), content=_bytes_of, message="m", sleep=sleeps
    )
    assert server.commits_created == 1 and result.sha == server.revision_sha(REPO) and sleeps == []


def test_a_failed_commit_is_retried_with_its_parent(hub_api, hub_client_env):
    server = hub_client_env
    hub_api.create_repo(REPO)
    server.inject(method="POST", path_regex=r"/commit/main$", status=502, retry_after=1, times=2)
    sleeps = _Sleeps()
    files = _files(**{"a.txt": b"a"})
    commits.commit_tree(hub_api, repo_id=REPO, files=files, content=_bytes_of, message="m", sleep=sleeps)
    assert server.commits_created == 1 and sleeps == [1.0, 1.0]


def test_a_concurrent_writer_is_detected(hub_api, hub_client_env):
    from huggingface_hub import CommitOperationAdd

    hub_api.create_repo(REPO)

    def content_while_someone_else_commits(f: hub_files.LocalFile) -> bytes:
        hub_api.create_commit(REPO, [CommitOperationAdd("other.txt", b"theirs")], commit_message="someone else")
        return _bytes_of(f)

    with pytest.raises(errors.ConcurrentUpdateError, match="moved from"):
        commits.commit_tree(
            hub_api,
            repo_id=REPO,
            files=_files(**{"a.txt": b"a"}),
            message="m",
            content=content_while_someone_else_commits,
        )


def test_final_commit_errors_are_translated(hub_api, hub_client_env):
    hub_api.create_repo(REPO)
    hub_client_env.inject(method="POST", path_regex=r"/commit/main$", status=403)
    with pytest.raises(errors.PermissionDeniedError, match=f"committing to model repo {REPO}"):
        commits.commit_tree(hub_api, repo_id=REPO, files=_files(**{"a.txt": b"a"}), content=_bytes_of, message="m")


# ------------------------------------------------------------------------------------------------ versions


def test_versions_are_immutable(hub_api, hub_client_env):
    server = hub_client_env
    hub_api.create_repo(REPO)
    files = _files(**{"a.txt": b"a"})
    v1 = versions.publish_version(hub_api, repo_id=REPO, version="v1", files=files, content=_bytes_of)
    assert not v1.reused and server.revision_sha(REPO, "refs/tags/v1") == server.revision_sha(REPO, "v1") == v1.sha
    assert versions.publish_version(hub_api, repo_id=REPO, version="v1", files=files, content=_bytes_of).reused
    with pytest.raises(errors.VersionConflictError, match="'v1'.*already exists.*a.txt"):
        versions.publish_version(
            hub_api, repo_id=REPO, version="v1", files=_files(**{"a.txt": b"A"}), content=_bytes_of
        )
    v2 = versions.publish_version(hub_api, repo_id=REPO, version="v2", files=files, content=_bytes_of)
    assert v2.reused and v2.sha == v1.sha  # Same files: the version points at the existing commit.
    assert server.commits_created == 1


def test_a_half_made_version_is_completed(hub_api, hub_client_env):
    hub_api.create_repo(REPO)
    files = _files(**{"a.txt": b"a"})
    sha = commits.commit_tree(hub_api, repo_id=REPO, files=files, content=_bytes_of, message="m").sha
    hub_api.create_branch(REPO, branch="v1", revision=sha)  # Killed before the tag.
    result = versions.publish_version(hub_api, repo_id=REPO, version="v1", files=files, content=_bytes_of)
    assert result.reused and hub_client_env.revision_sha(REPO, "refs/tags/v1") == sha


@pytest.mark.parametrize("bad", ["main", "HEAD", "a" * 40, "has space", "-dash", "", "x" * 101])
def test_bad_version_names_are_refused(bad):
    with pytest.raises(ValueError, match="cannot name a tag and a branch"):
        versions.validate_version(bad)


def test_a_file_stored_inline_or_in_lfs_compares_equal_either_way(hub_api, hub_client_env):
    hub_api.create_repo(REPO)
    files = [hub_files.local_file("notes.txt", b"plain text\n")]  # The Hub stores text inline.
    assert len(files[0].blob_ids) == 2  # The inline blob's id and the LFS pointer's.
    first = versions.publish_version(hub_api, repo_id=REPO, version="v1", files=files, content=_bytes_of)
    assert not hub_client_env.list_files(REPO, "v1")["notes.txt"].lfs
    again = versions.publish_version(hub_api, repo_id=REPO, version="v1", files=files, content=_bytes_of)
    assert again.reused and again.sha == first.sha
    assert commits.commit_tree(hub_api, repo_id=REPO, files=files, content=_bytes_of, message="m").commits_created == 0


def test_a_rejected_token_appears_in_no_error_text(hub_client_env, monkeypatch):
    import traceback

    token = "hf_wrong_token_abcdef123456"
    monkeypatch.setenv("HF_TOKEN", token)
    api = auth.make_api(endpoint=hub_client_env.url)
    with pytest.raises(errors.AuthenticationError) as info:
        repos.ensure_repo(api, repo_id=REPO)
    text = "".join(traceback.format_exception(info.value))  # The whole chain, as a traceback would show it.
    assert REPO in str(info.value) and "HTTP 401" in text and token not in text


# ------------------------------------------------------------------------------------------------ LFS uploads


@pytest.fixture
def transfers():
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        yield pool


def _random(size: int, seed: int) -> bytes:
    import random

    return random.Random(seed).randbytes(size)


def _disk_files(tmp_path, **contents: bytes) -> list[hub_files.LocalFile]:
    """Files written under ``tmp_path`` and hashed from there (``source`` is their path)."""
    files = []
    for name, data in contents.items():
        path = tmp_path / name
        path.write_bytes(data)
        files.append(hub_files.local_file(name, str(path)))
    return files


def _path_of(f: hub_files.LocalFile) -> str:
    assert f.source is not None
    return f.source


def test_lfs_uploads_send_only_what_the_hub_lacks(hub_api, hub_client_env, tmp_path, transfers):
    server = hub_client_env
    hub_api.create_repo(REPO)
    files = _disk_files(tmp_path, **{"a.bin": _random(3 * MIB, 1), "b.bin": _random(MIB, 2), "c.bin": _random(10, 3)})
    sent = lfs.upload_lfs_files(hub_api, repo_id=REPO, files=files, content=_path_of, executor=transfers)
    assert sent == ("a.bin", "b.bin", "c.bin") and server.bytes_uploaded == 4 * MIB + 10
    assert server.count_requests("POST", r"/objects/verify$", 200) == 3
    server.reset_stats()
    again = lfs.upload_lfs_files(hub_api, repo_id=REPO, files=files, content=_path_of, executor=transfers)
    assert again == () and server.bytes_uploaded == 0 and server.count_requests("PUT") == 0
    result = versions.publish_version(hub_api, repo_id=REPO, version="v1", files=files, content=_path_of)
    assert result.lfs_paths == {"a.bin", "b.bin", "c.bin"} and server.bytes_uploaded == 0
    assert all(server.read_file(REPO, f.path_in_repo) == open(_path_of(f), "rb").read() for f in files)


def test_multipart_parts_are_sent_in_parallel(hub_api, hub_client_env, tmp_path, transfers):
    server = hub_client_env
    hub_api.create_repo(REPO)
    server.multipart_chunk_size = MIB
    server.bandwidth_bytes_per_s = 4 * MIB  # Per connection: a part takes ~0.25 s, so parallel parts overlap.
    blob = _random(4 * MIB + 123, 4)
    files = _disk_files(tmp_path, **{"weights.bin": blob})
    assert lfs.upload_lfs_files(hub_api, repo_id=REPO, files=files, content=_path_of, executor=transfers)
    assert server.count_requests("PUT", r"/part/\d+$", 200) == 5
    assert server.count_requests("POST", r"^/_lfs/upload/[0-9a-f]{64}$", 200) == 1
    assert server.max_concurrent_uploads >= 3  # The client's own upload sends them one by one (1).
    versions.publish_version(hub_api, repo_id=REPO, version="v1", files=files, content=_path_of)
    assert server.read_file(REPO, "weights.bin", "v1") == blob


def test_in_memory_content_is_sent_in_parts_too(hub_api, hub_client_env, transfers):
    server = hub_client_env
    hub_api.create_repo(REPO)
    server.multipart_chunk_size = MIB
    blob = _random(2 * MIB + 1, 5)
    files = [hub_files.local_file("generated.bin", blob)]
    assert lfs.upload_lfs_files(hub_api, repo_id=REPO, files=files, content=_bytes_of, executor=transfers)
    assert server.count_requests("PUT", r"/part/\d+$", 200) == 3
    versions.publish_version(hub_api, repo_id=REPO, version="v1", files=files, content=_bytes_of)
    assert server.read_file(REPO, "generated.bin") == blob


def test_a_failed_part_is_retried_by_the_clients_backoff(hub_api, hub_client_env, tmp_path, transfers):
    server = hub_client_env
    hub_api.create_repo(REPO)
    server.multipart_chunk_size = MIB
    fault = server.inject(method="PUT", path_regex=r"/part/2$", status=503, retry_after=0)
    files = _disk_files(tmp_path, **{"weights.bin": _random(3 * MIB, 6)})
    lfs.upload_lfs_files(hub_api, repo_id=REPO, files=files, content=_path_of, executor=transfers)
    assert fault.hits == 1 and server.count_requests("PUT", r"/part/2$", 200) == 1
    versions.publish_version(hub_api, repo_id=REPO, version="v1", files=files, content=_path_of)
    assert server.read_file(REPO, "weights.bin") == open(_path_of(files[0]), "rb").read()


def test_an_interrupted_multipart_upload_is_resumed(hub_api, hub_client_env, tmp_path, transfers):
    server = hub_client_env
    hub_api.create_repo(REPO)
    server.multipart_chunk_size = MIB
    blob = _random(3 * MIB, 7)
    files = _disk_files(tmp_path, **{"weights.bin": blob})
    server.inject(method="PUT", path_regex=r"/part/3$", status=400)  # A final error: the run stops there.
    with pytest.raises(errors.HubError, match=f"HTTP 400 while uploading files to model repo {REPO}"):
        lfs.upload_lfs_files(hub_api, repo_id=REPO, files=files, content=_path_of, executor=transfers)
    assert server.count_requests("PUT", r"/part/[12]$", 200) == 2  # The other parts were not abandoned midway.
    assert server.count_requests("POST", r"^/_lfs/upload/") == 0  # Never completed, never verified.
    server.clear_faults()
    assert lfs.upload_lfs_files(hub_api, repo_id=REPO, files=files, content=_path_of, executor=transfers)
    assert lfs.upload_lfs_files(hub_api, repo_id=REPO, files=files, content=_path_of, executor=transfers) == ()
    versions.publish_version(hub_api, repo_id=REPO, version="v1", files=files, content=_path_of)
    assert server.read_file(REPO, "weights.bin") == blob


def test_lfs_batch_errors_name_the_file(hub_api, hub_client_env, transfers):
    hub_api.create_repo(REPO)
    bad = dataclasses_replace(hub_files.local_file("w.bin", b"x"), size=-1)  # The server's 422.
    with pytest.raises(errors.HubError, match=r"refused to store w\.bin of model repo .* \(LFS error 422"):
        lfs.upload_lfs_files(hub_api, repo_id=REPO, files=[bad], content=_bytes_of, executor=transfers)


def test_read_head_is_one_consistent_snapshot(hub_api, hub_client_env):
    server = hub_client_env
    hub_api.create_repo(REPO)
    files = _files(**{"a.txt": b"a\n", "dir__b.bin": b"\x00" * 100})
    sha = commits.commit_tree(hub_api, repo_id=REPO, files=files, content=_bytes_of, message="m").sha
    server.reset_stats()
    head = repos.read_head(hub_api, repo_id=REPO)
    assert head.sha == sha == server.revision_sha(REPO) and len(server.requests) == 1
    assert head.tree == {p: e.git_oid for p, e in server.list_files(REPO).items()}
    with pytest.raises(errors.NotFoundError, match="branch 'nope' not found in model repo"):
        repos.read_head(hub_api, repo_id=REPO, branch="nope")


def test_a_version_is_committed_without_repeating_the_preupload(hub_api, hub_client_env):
    server = hub_client_env
    hub_api.create_repo(REPO)
    server.reset_stats()
    files = _files(**{"README.md": b"---\nlicense: mit\n---\n# card\n", "w.bin": b"\x00\x01" * 100})
    versions.publish_version(hub_api, repo_id=REPO, version="v1", files=files, content=_bytes_of)
    # Read ahead together: the refs, the head with its files, the preupload and its LFS batch; then create_commit
    # validates the card and commits, without repeating the preupload or the batch.
    assert server.count_requests("POST", r"/preupload/main$") == 1
    assert server.count_requests("POST", r"/objects/batch$") == 1
    assert server.count_requests("POST", r"/commit/main$", 200) == 1 and server.commits_created == 1
    assert server.count_requests("POST", r"/validate-yaml$") == 1
