"""API tokens: only their sha256 is stored, with their scopes; a revoked token stays listed, unusable."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from evergreen.errors import ConflictError, NotFoundError, did_you_mean

from ._records import TokenInfo
from ._runs import now
from ._schema import TokenRecord

#: What a token may do: ``predict`` and send ``feedback`` to the prediction server, ``read`` the control API,
#: ``operate`` it (start runs, ingest, promote, deploy, acknowledge alerts; reads too), ``admin`` everything
#: (tokens included).
SCOPES = ("predict", "feedback", "read", "operate", "admin")


def token_hash(token: str) -> str:
    """The sha256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str, scopes: Sequence[str]) -> str:
    """A new token called ``name`` with ``scopes``; the plain token is returned once and never stored."""
    if session.execute(select(TokenRecord.id).where(TokenRecord.name == name)).first() is not None:
        raise ConflictError(f"a token named {name!r} exists already; revoke it or choose another name")
    token = "eg_" + secrets.token_urlsafe(32)
    session.add(
        TokenRecord(name=name, token_hash=token_hash(token), scopes=list(scopes), created_at=now(), revoked_at=None)
    )
    session.flush()
    return token


def revoke_token(session: Session, name: str) -> TokenInfo:
    """Make the token called ``name`` unusable from now on (a revoked one stays as it is)."""
    record = _token(session, name)
    if record.revoked_at is None:
        record.revoked_at = now()
        session.flush()
    return _token_info(record)


def get_token(session: Session, name: str) -> TokenInfo:
    """The token called ``name`` (its record, never the token)."""
    return _token_info(_token(session, name))


def _token(session: Session, name: str) -> TokenRecord:
    record = session.execute(select(TokenRecord).where(TokenRecord.name == name)).scalar_one_or_none()
    if record is None:
        names = session.execute(select(TokenRecord.name)).scalars().all()
        raise NotFoundError(f"no token {name!r}{did_you_mean(name, names)}; `evergreen tokens list` lists them")
    return record


def _token_info(r: TokenRecord) -> TokenInfo:
    return TokenInfo(r.name, [str(s) for s in r.scopes], r.created_at, r.revoked_at)


def find_token(session: Session, token: str) -> TokenInfo | None:
    """The valid token ``token`` (its name and scopes); None when it is unknown or revoked."""
    record = session.execute(
        select(TokenRecord).where(TokenRecord.token_hash == token_hash(token))
    ).scalar_one_or_none()
    if record is None or record.revoked_at is not None:
        return None
    return _token_info(record)


def list_tokens(session: Session, *, after: str | None = None, limit: int | None = None) -> list[TokenInfo]:
    """Tokens by name (never the token itself): those named after ``after``, at most ``limit``."""
    query = select(TokenRecord).order_by(TokenRecord.name)
    if after is not None:
        query = query.where(TokenRecord.name > after)
    rows = session.execute(query if limit is None else query.limit(limit)).scalars()
    return [_token_info(r) for r in rows]
