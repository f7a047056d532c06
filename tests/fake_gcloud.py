"""A stand-in for the ``gcloud`` CLI in tests of ``run_dataflow.sh --gcp`` (a test double, not a mock of Python).

Faked because the real CLI needs a Google account and the network. It covers only the calls the script makes:

- every call appends ``{"argv": [...]}`` as one JSON line to ``$FAKE_GCLOUD_LOG``;
- ``auth list``: prints ``$FAKE_GCLOUD_ACCOUNT`` (default ``ci@example.com``; empty = no active account);
- ``storage ls URL`` / ``storage cp [--recursive] SRC... DST`` / ``storage mv SRC DST``: real reads and writes
  against the GCS emulator at ``$STORAGE_EMULATOR_HOST`` (``-`` as the source reads stdin); a missing bucket or
  object exits 1 like gcloud;
- ``artifacts docker images describe``: exits 1 (image not built yet); other ``artifacts`` and ``builds`` calls
  succeed;
- ``ai custom-jobs create``: prints ``projects/123/locations/<region>/customJobs/42``; ``describe`` prints the next
  state of the comma-separated ``$FAKE_VERTEX_STATES`` (default ``JOB_STATE_SUCCEEDED``), one per call, the last
  repeating (the position is kept in ``$FAKE_GCLOUD_LOG.state``);
- anything else exits 2 with "unsupported", so an unexpected call fails the test.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence


def _flags(argv: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Positional arguments and ``--flag=value`` flags (the script always uses the ``=`` form)."""
    positional: list[str] = []
    flags: dict[str, str] = {}
    for arg in argv:
        if arg.startswith("--"):
            name, _, value = arg[2:].partition("=")
            flags[name] = value
        elif arg in ("-r", "-R"):
            flags["recursive"] = ""
        else:
            positional.append(arg)
    return positional, flags


def _client():
    from google.cloud import storage

    if not os.environ.get("STORAGE_EMULATOR_HOST"):
        sys.exit("fake gcloud: STORAGE_EMULATOR_HOST is not set")
    return storage.Client.create_anonymous_client()


def _split(url: str) -> tuple[str, str]:
    if not url.startswith("gs://"):
        sys.exit(f"fake gcloud: not a gs:// URL: {url}")
    bucket, _, path = url[len("gs://") :].partition("/")
    return bucket, path


def _storage_ls(url: str) -> int:
    client = _client()
    name, prefix = _split(url)
    bucket = client.lookup_bucket(name)
    if bucket is None:
        print(f"ERROR: (gcloud.storage.ls) gs://{name} not found: 404.", file=sys.stderr)
        return 1
    blobs = list(client.list_blobs(name, prefix=prefix))
    matches = [b.name for b in blobs if not prefix or b.name == prefix or b.name.startswith(prefix.rstrip("/") + "/")]
    if prefix and not matches:
        print("ERROR: (gcloud.storage.ls) One or more URLs matched no objects.", file=sys.stderr)
        return 1
    for blob_name in matches:
        print(f"gs://{name}/{blob_name}")
    return 0


def _storage_cp(sources: list[str], dst: str, recursive: bool) -> int:
    client = _client()
    name, prefix = _split(dst)
    bucket = client.bucket(name)
    for src in sources:
        if src == "-":
            bucket.blob(prefix).upload_from_string(sys.stdin.buffer.read())
        elif os.path.isdir(src):
            if not recursive:
                print(f"ERROR: {src} is a directory; use --recursive", file=sys.stderr)
                return 1
            base = os.path.basename(os.path.normpath(src))
            for root, _, files in os.walk(src):
                for file_name in files:
                    path = os.path.join(root, file_name)
                    rel = os.path.relpath(path, os.path.dirname(os.path.normpath(src)))
                    assert rel.startswith(base)
                    bucket.blob(prefix.rstrip("/") + "/" + rel).upload_from_filename(path)
        else:
            target = prefix.rstrip("/") + "/" + os.path.basename(src) if dst.endswith("/") else prefix
            bucket.blob(target).upload_from_filename(src)
    return 0


def _storage_mv(src: str, dst: str) -> int:
    """Renames one object (copy, then delete, as GCS itself does)."""
    client = _client()
    (src_bucket, src_name), (dst_bucket, dst_name) = _split(src), _split(dst)
    blob = client.bucket(src_bucket).blob(src_name)
    if not blob.exists():
        print(f"ERROR: (gcloud.storage.mv) {src} matched no objects.", file=sys.stderr)
        return 1
    client.bucket(dst_bucket).blob(dst_name).upload_from_string(blob.download_as_bytes())
    blob.delete()
    return 0


def main(argv: Sequence[str]) -> int:
    log = os.environ["FAKE_GCLOUD_LOG"]
    with open(log, "a", encoding="utf-8") as f:
        f.write(json.dumps({"argv": list(argv)}) + "\n")
    positional, flags = _flags(argv)
    command = positional[:3]
    if command[:2] == ["auth", "list"]:
        account = os.environ.get("FAKE_GCLOUD_ACCOUNT", "ci@example.com")
        if account:
            print(account)
        return 0
    if command[:2] == ["storage", "ls"]:
        return _storage_ls(positional[2])
    if command[:2] == ["storage", "cp"]:
        return _storage_cp(positional[2:-1], positional[-1], "recursive" in flags)
    if command[:2] == ["storage", "mv"] and len(positional) == 4:
        return _storage_mv(positional[2], positional[3])
    if command[:3] == ["artifacts", "docker", "images"]:
        print("ERROR: (gcloud.artifacts.docker.images.describe) Image not found", file=sys.stderr)
        return 1
    if command[:1] in (["artifacts"], ["builds"]):
        return 0
    if command[:2] == ["secrets", "versions"]:
        sys.stdin.read()  # The token arrives on stdin; like the real CLI, it is never echoed or logged.
        return 0
    if command[:1] == ["secrets"]:
        return 0
    if command[:2] == ["ai", "custom-jobs"] and len(positional) >= 3:
        if positional[2] == "create":
            print(f"projects/123/locations/{flags.get('region', 'unknown')}/customJobs/42")
            return 0
        if positional[2] == "describe":
            states = os.environ.get("FAKE_VERTEX_STATES", "JOB_STATE_SUCCEEDED").split(",")
            counter = log + ".state"
            calls = int(open(counter).read()) if os.path.exists(counter) else 0
            with open(counter, "w") as f:
                f.write(str(calls + 1))
            print(states[min(calls, len(states) - 1)])
            return 0
    print(f"fake gcloud: unsupported call: {' '.join(argv)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
