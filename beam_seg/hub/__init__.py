"""The Hugging Face Hub client layer: everything beam_seg asks of the Hub, over ``HfApi``.

Modules, each with one job: :mod:`~beam_seg.hub.errors` (one-line errors), :mod:`~beam_seg.hub.auth` (endpoint,
token, client), :mod:`~beam_seg.hub.retry` (backoff where the client has none), :mod:`~beam_seg.hub.files` (hashes
and the LFS prediction), :mod:`~beam_seg.hub.lfs` (parallel LFS transfers: the only module on client internals),
:mod:`~beam_seg.hub.repos` (repos and refs), :mod:`~beam_seg.hub.commits` (exact commits) and
:mod:`~beam_seg.hub.versions` (immutable versions).
"""
