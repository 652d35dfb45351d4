"""API tokens: made, listed and revoked here, by ``evergreen tokens`` and the API's admin routes alike.

Only a token's sha256 is stored; the plain token is handed out once, when it is made. Scopes say what a token
may call (:data:`~evergreen.store.SCOPES`): ``read`` the control API, ``operate`` it (start runs, deploy,
promote, acknowledge alerts), ``predict`` and send ``feedback`` to the prediction server, ``admin`` anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from evergreen.config import Settings
from evergreen.errors import ServingValueError
from evergreen.store import SCOPES, TokenInfo, get_token, list_tokens
from evergreen.store import create_token as store_token
from evergreen.store import revoke_token as store_revoke
from evergreen.workspace import open_workspace

#: The longest token name (the store's column).
MAX_NAME = 255


@dataclass(frozen=True)
class IssuedToken:
    """A token just made: its name, scopes and time, and the token itself, which is shown this once."""

    name: str
    scopes: list[str]
    created_at: datetime
    token: str


def tokens(*, after: str | None = None, limit: int | None = None, settings: Settings | None = None) -> list[TokenInfo]:
    """Tokens by name, revoked ones too (never the token itself): named after ``after`` (the last name of the
    previous page), at most ``limit``; every one by default."""
    with open_workspace(settings).session() as session:
        return list_tokens(session, after=after, limit=limit)


def create_token(name: str, scopes: Sequence[str], *, settings: Settings | None = None) -> IssuedToken:
    """Make a token called ``name`` with ``scopes`` (some of :data:`~evergreen.store.SCOPES`).

    Raises:
        ServingValueError: the name is empty or too long, or a scope is unknown or none is given.
        ConflictError: a token of that name exists (revoked or not).
    """
    check_token_name(name)
    chosen = check_scopes(scopes)
    with open_workspace(settings).session() as session:
        token = store_token(session, name, chosen)
        created = get_token(session, name)
    return IssuedToken(created.name, created.scopes, created.created_at, token)


def revoke_token(name: str, *, settings: Settings | None = None) -> TokenInfo:
    """Make the token ``name`` unusable (servers stop accepting it within a few seconds); revoking a revoked
    token changes nothing. Returns the token's record.

    Raises:
        NotFoundError: no token is called ``name`` (the message suggests the nearest name).
    """
    with open_workspace(settings).session() as session:
        return store_revoke(session, name)


def check_token_name(name: str) -> str:
    """``name`` when it can name a token: non-empty text of at most :data:`MAX_NAME` characters, no spaces."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or any(c.isspace() for c in name):
        raise ServingValueError(
            f"token name {name!r} must be 1 to {MAX_NAME} characters without spaces, e.g. 'ci-deployer'"
        )
    return name


def check_scopes(scopes: Sequence[str]) -> list[str]:
    """``scopes`` sorted and without repeats, when each is one of :data:`~evergreen.store.SCOPES`."""
    chosen = sorted(set(scopes))
    unknown = [s for s in chosen if s not in SCOPES]
    if unknown or not chosen:
        got = f"unknown scope(s) {unknown}" if unknown else "no scope"
        raise ServingValueError(f"{got}; expected one or more of {list(SCOPES)} (--scope read --scope operate …)")
    return chosen
