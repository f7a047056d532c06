"""Local test double of the Hugging Face Hub HTTP protocol: the part of it this repository's code uses.

:class:`HubServer` is a **test double**: a small in-process HTTP server (stdlib ``ThreadingHTTPServer``) bound
to ``127.0.0.1`` on a free port that speaks the same routes, headers and JSON shapes as the Hub for the
calls made by the real ``huggingface_hub`` client in this repository's tests and ``bench/publish.py``
(``HfApi``, ``create_commit``, ``preupload_lfs_files``, ``upload_folder``, ``snapshot_download``,
``hf_hub_download``, ``ModelCard.push_to_hub`` / ``load`` ...). It lets the publish stage be tested offline,
over real HTTP, with real semantics: atomic commits with parents, branches and tags, content-addressed LFS
storage with a signed-URL upload + verify step, authentication / authorization, and fault injection. The
ground truth for every route and header is the source of ``huggingface_hub`` 2.4.0 (``hf_api.py``,
``_commit_api.py``, ``lfs.py``, ``file_download.py``, ``utils/_http.py``, ``constants.py``).

Use: the fixtures ``hub_server``, ``hub_token``, ``hub_client_env`` and ``hub_api`` (:mod:`.fixtures`) are
available to every test through ``tests/conftest.py``; import the rest from here
(``from hubserver import DEFAULT_USER, HubServer``).

Routes (``{type}`` is ``models`` | ``datasets`` | ``spaces``, ``{prefix}`` is ``""`` | ``datasets/`` |
``spaces/``, ``{repo}`` is ``namespace/name``, revisions are URL-quoted single segments):

* ``POST /api/repos/create`` (409 + ``{"url": ...}`` if it exists; spaces need ``sdk``; ``hardware``: 402 when the
  account's plan does not cover it, see :mod:`.spaces`)
* ``GET  /api/spaces/{repo}/runtime``, ``POST /api/spaces/{repo}/hardware`` (``flavor``; :mod:`.spaces`)
* ``POST /api/validate-yaml`` (README front matter, parsed with PyYAML)
* ``GET  /api/{type}/{repo}`` and ``/api/{type}/{repo}/revision/{rev}`` (``?blobs=true``)
* ``GET  /api/{type}/{repo}/tree/{rev}`` (whole repo, ``recursive``; a single page)
* ``GET  /api/{type}/{repo}/refs``
* ``POST /api/{type}/{repo}/preupload/{rev}`` (``uploadMode``, ``shouldIgnore`` (always false), ``oid``)
* ``POST /api/{type}/{repo}/commit/{rev}`` (NDJSON: ``header``, ``file``, ``lfsFile``, ``deletedFile``,
  ``deletedFolder``; ``parentCommit`` -> 412 on conflict; ``create_pr=1`` -> 400)
* ``PUT  /api/{type}/{repo}/settings`` (``visibility`` only)
* ``POST /api/{type}/{repo}/branch/{branch}`` (``startingPoint``)
* ``POST /api/{type}/{repo}/tag/{rev}`` (``tag``, ``message``)
* ``POST /{prefix}{repo}.git/info/lfs/objects/batch`` (``basic``; ``multipart`` if ``multipart_chunk_size``)
* ``POST /{prefix}{repo}.git/info/lfs/objects/verify`` (recomputed sha256 **and** size, 422 on mismatch)
* ``PUT  /_lfs/upload/{oid}?...&sig=`` signed single-part upload (no ``Authorization`` header: HMAC + expiry)
* ``PUT  /_lfs/upload/{oid}/part/{n}?...&sig=`` and ``POST /_lfs/upload/{oid}?...&sig=`` (multipart
  parts + completion)
* ``GET|HEAD /{prefix}{repo}/resolve/{rev}/{path}`` (``X-Repo-Commit``, ``ETag``, ``X-Linked-Etag``,
  ``X-Linked-Size``, ``Content-Length``, single ``Range`` -> 206 / 416)

Any other path is a 404 without ``X-Error-Code``; a known path with another method is a 405 with ``Allow``.

Errors carry ``X-Error-Code`` (``RepoNotFound`` / ``RevisionNotFound`` / ``EntryNotFound``), ``X-Error-Message``
and a JSON ``{"error": ...}`` body (:class:`HubHTTPError`), which is how the client picks
``RepositoryNotFoundError``, ``RevisionNotFoundError``, ``RemoteEntryNotFoundError``, ``BadRequestError`` or
``HfHubHTTPError``. Authentication and authorization rules: see :mod:`.accounts`.

Client facts (read from the installed ``huggingface_hub`` 2.4.0 source, relied upon by the publish stage):

* **Xet**: with ``hf_xet`` installed, uploads go through Xet (``_upload_xet_files`` / the pipelined
  ``upload_folder``) and never fall back to LFS. ``constants.HF_HUB_DISABLE_XET`` is read from the
  environment *at import*, but ``utils._runtime.is_xet_available()`` reads the constant *at call time*, so
  either export ``HF_HUB_DISABLE_XET=1`` before importing ``huggingface_hub`` or monkeypatch
  ``huggingface_hub.constants.HF_HUB_DISABLE_XET = True`` (what :func:`configure_hf_client` /
  the ``hub_client_env`` fixture do). With Xet disabled ``upload_folder`` is a single ``create_commit``
  and large files use ``preupload`` -> LFS ``batch`` -> ``PUT`` -> ``verify``. Downloads only use Xet when
  the server sends ``X-Xet-*`` headers, which this server never does.
* **Endpoint**: ``constants.ENDPOINT`` / ``HUGGINGFACE_CO_URL_TEMPLATE`` and the module-level
  ``huggingface_hub.hf_api.api`` (behind ``upload_file``, ``ModelCard.push_to_hub``) are bound at import;
  ``RepoCard.validate`` posts to ``constants.ENDPOINT``; ``ModelCard.load`` calls ``hf_hub_download``
  without an endpoint. Pass ``endpoint=server.url`` to ``HfApi``, ``snapshot_download`` and
  ``hf_hub_download`` explicitly, and use ``hub_client_env`` for the module-level helpers.
* **Retries** (``utils/_http.py``, checked against this server): ``http_backoff`` retries statuses 408, 429,
  500, 502, 503, 504 and ``httpx2.TimeoutException`` / ``NetworkError`` / ``RemoteProtocolError`` (so dropped
  connections too), ``max_retries=5``, waiting 1, 2, 4, 8, 8 s. An integer ``Retry-After`` header on any
  retried status (HTTP-date values are ignored), or for a 429 a ``RateLimit: "api";r=0;t=N`` header, makes it
  wait ``N + 1`` s instead (not capped by ``max_wait_time``).

  - Retried through ``http_backoff``: ``preupload``, LFS ``batch``, LFS ``PUT`` (single and multipart parts),
    the multipart completion ``POST``, LFS ``verify``, and the tree listing (``list_repo_tree``,
    ``list_repo_files``, the one inside ``snapshot_download``).
  - **Not retried** (plain ``get_session()`` calls, one attempt): ``/commit`` (``create_commit``,
    ``upload_file``, ``upload_folder``, ``delete_file`` / ``delete_folder``, ``ModelCard.push_to_hub``; only the
    Xet pipelined upload passes ``retry_on_error=True``), ``create_repo`` (apart from its loop on the 409
    "conflicting operation in progress"), ``repo_info`` / ``model_info`` (so a 429/5xx on the ``repo_info`` call
    of ``snapshot_download(revision=<branch or tag>)`` ends in ``LocalEntryNotFoundError`` unless the snapshot
    is cached), ``create_branch`` / ``create_tag``, ``update_repo_settings``, ``list_repo_refs``,
    ``validate-yaml``.
  - ``hf_hub_download``: the metadata ``HEAD`` is tried once without retries; on a 408/429/5xx or a
    ``ConnectError`` / timeout, and with no cached copy, it is repeated through ``http_backoff`` (full
    retries). A ``HEAD`` whose connection is dropped raises ``httpx2.RemoteProtocolError`` (not caught). The
    body ``GET`` (``http_stream_backoff``) retries only 408 and 429 (honouring ``Retry-After``), a 5xx raises
    ``HfHubHTTPError``; ``ConnectError`` / timeout / ``RemoteProtocolError`` (dropped before the headers or
    cut mid-body) are retried after 1 s, up to 5 times, resuming with a ``Range`` request from the bytes
    already written (the client writes in 10 MiB chunks, so a cut before 10 MiB restarts from 0).

Fault injection (:mod:`.faults`): ``server.inject(method="PUT", path_regex=r"/_lfs/upload/", status=429,
retry_after=1, times=2)`` answers the next ``times`` matching requests with that status; ``drop=True`` reads
part of the request body and closes the connection without any response; ``truncate_response_at=N`` serves the
real response but closes the connection after ``N`` body bytes. ``path_regex`` is searched in the URL-decoded
request path without the query string. ``latency_s`` is added to every request and ``bandwidth_bytes_per_s``
caps request and response bodies per connection.

Not implemented (nothing here uses it): pull requests / discussions (``create_pr=True`` -> 400), Xet storage,
repo deletion, branch and tag deletion, settings other than ``visibility`` (-> 400; no gating: ``gated`` is
always false), ``whoami``, ``paths-info``, commit listings, tree listings of a sub-folder, with
``expand=true`` (-> 400) or in pages, ``include_prs`` in refs, ``expand`` in repo info (ignored: all fields
are sent), ``.gitignore`` handling in ``preupload`` (``shouldIgnore`` is always false), cross-repo copies
(``/lfs-files/duplicate``), ``super_squash_history``, ``move_repo``, ``duplicate_repo``, search / listing
endpoints (``list_models`` ...), LFS ``download`` batch operations, short commit shas as revisions,
``refs/pr/N`` refs, multi-range requests, and security-scan fields in tree listings.

Modules: :mod:`.server` (``HubServer``: lifecycle, settings, stats, server-side views), :mod:`.handler` (HTTP
plumbing), :mod:`.routes` (route table, repo / refs / listing / download routes), :mod:`.lfs` (preupload, LFS
batch, signed uploads, verify), :mod:`.commits` (the commit route), :mod:`.storage` (repos, commits, blob
store), :mod:`.content` (git blob ids, LFS pointers and patterns, README metadata), :mod:`.accounts` (users,
tokens, access rules), :mod:`.faults` (fault injection, bandwidth throttle), :mod:`.messages` (request,
response, error objects), :mod:`.client` (client configuration), :mod:`.fixtures` (pytest fixtures).
"""

from __future__ import annotations

from .accounts import DEFAULT_ORG, DEFAULT_TOKEN, DEFAULT_USER, User
from .client import configure_hf_client
from .content import DEFAULT_GITATTRIBUTES, git_blob_sha1, lfs_pointer, parse_front_matter
from .faults import Fault
from .messages import HubHTTPError
from .server import HubServer
from .storage import Commit, FileEntry, Repo, Tag

__all__ = [
    "DEFAULT_GITATTRIBUTES",
    "DEFAULT_ORG",
    "DEFAULT_TOKEN",
    "DEFAULT_USER",
    "Commit",
    "Fault",
    "FileEntry",
    "HubHTTPError",
    "HubServer",
    "Repo",
    "Tag",
    "User",
    "configure_hf_client",
    "git_blob_sha1",
    "lfs_pointer",
    "parse_front_matter",
]
