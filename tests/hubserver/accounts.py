"""Accounts: users and their tokens (authentication), and who may read or write a repository (authorization).

Rules, as on the Hub: an unknown bearer token is a 401 on any route; a write without a token is a 401; a token
without write access to the namespace is a 403; a private repo is a 404 ``RepoNotFound`` to anonymous users and
to users without access (access = write access to its namespace). Public repos are readable anonymously.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from .messages import HubHTTPError
from .storage import Repo, Storage

DEFAULT_USER = "hub-tester"
DEFAULT_TOKEN = "hf_hub_tester_write_token"
DEFAULT_ORG = "hub-test-org"


@dataclass
class User:
    """An account. Attributes of an account that change how the Hub answers it belong here.

    Attributes:
        name: User name, also its namespace.
        tokens: Bearer tokens authenticating the user (all with write access).
        orgs: Organizations whose namespace the user can write to.
        plan: ``pro`` or ``free``: what hardware its Spaces may run on (:mod:`.spaces`).
    """

    name: str
    tokens: set[str]
    orgs: set[str]
    plan: str = "pro"

    def can_write(self, namespace: str) -> bool:
        """Tells whether the user can write to (and see the private) repos of ``namespace``."""
        return namespace == self.name or namespace in self.orgs


class Accounts:
    """The users of one server, by name and by token (thread-safe)."""

    def __init__(self) -> None:
        self._users: dict[str, User] = {}
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, name: str, token: str, orgs: Sequence[str] = (), *, plan: str | None = None) -> User:
        """Registers a user, or adds a token and organizations to an existing one.

        Args:
            name: User name, also its namespace.
            token: Bearer token authenticating the user.
            orgs: Organizations the user can write to.
            plan: ``pro`` (a new user's default) or ``free``; ``None`` keeps an existing user's plan.

        Returns:
            The user.
        """
        with self._lock:
            user = self._users.setdefault(name, User(name=name, tokens=set(), orgs=set()))
            user.tokens.add(token)
            user.orgs.update(orgs)
            if plan is not None:
                if plan not in ("pro", "free"):
                    raise ValueError(f"plan {plan!r} must be 'pro' or 'free'")
                user.plan = plan
            self._tokens[token] = name
            return user

    def authenticate(self, authorization: str | None) -> User | None:
        """Returns the user of a request.

        Args:
            authorization: The ``Authorization`` header (``Bearer <token>``), if any.

        Returns:
            The user, or ``None`` for an anonymous request (no header).

        Raises:
            HubHTTPError: 401 for an unknown token or another scheme than ``Bearer``.
        """
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            name = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
            if name is None:
                raise HubHTTPError(401, "Invalid credentials in Authorization header")
            return self._users[name]


def readable_repo(storage: Storage, user: User | None, repo_type: str, repo_id: str) -> Repo:
    """Returns a repository ``user`` can see (call with the server lock held).

    Args:
        storage: The server's storage.
        user: The requesting user (``None``: anonymous).
        repo_type: ``model``, ``dataset`` or ``space``.
        repo_id: ``namespace/name``.

    Returns:
        The repository.

    Raises:
        HubHTTPError: 404 ``RepoNotFound`` if it does not exist or is private to others.
    """
    repo = storage.repo(repo_type, repo_id)
    if repo.private and (user is None or not user.can_write(repo.namespace)):
        raise HubHTTPError(404, "Repository not found", code="RepoNotFound")
    return repo


def writable_repo(storage: Storage, user: User | None, repo_type: str, repo_id: str) -> Repo:
    """Returns a repository ``user`` can write to (call with the server lock held).

    Args:
        storage: The server's storage.
        user: The requesting user (``None``: anonymous).
        repo_type: ``model``, ``dataset`` or ``space``.
        repo_id: ``namespace/name``.

    Returns:
        The repository.

    Raises:
        HubHTTPError: 401 without a user, 404 ``RepoNotFound`` as in :func:`readable_repo`, 403 without write
            access to its namespace.
    """
    if user is None:
        raise HubHTTPError(401, "You must be authenticated to write to this repository (missing token)")
    repo = readable_repo(storage, user, repo_type, repo_id)
    if not user.can_write(repo.namespace):
        raise HubHTTPError(403, f"You don't have the rights to write to {repo.repo_type} repo {repo.repo_id}")
    return repo
