"""API tokens: only their sha256 is stored, with their scopes; a revoked token stays listed, unusable."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from evergreen.errors import NotFoundError, StoreError, did_you_mean

from ._records import TokenInfo
from ._runs import now
from ._schema import TokenRecord

SCOPES = ("predict", "feedback", "read", "operate", "admin")


def token_hash(token: str) -> str:
    """The sha256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str, scopes: Sequence[str]) -> str:
    """A new token called ``name`` with ``scopes``; the plain token is returned once and never stored."""
    if session.execute(select(TokenRecord.id).where(TokenRecord.name == name)).first() is not None:
        raise StoreError(f"a token named {name!r} exists already; revoke it or choose another name")
    token = "eg_" + secrets.token_urlsafe(32)
    session.add(
        TokenRecord(name=name, token_hash=token_hash(token), scopes=list(scopes), created_at=now(), revoked_at=None)
    )
    session.flush()
    return token


def revoke_token(session: Session, name: str) -> None:
    """Make the token called ``name`` unusable from now on."""
    record = session.execute(select(TokenRecord).where(TokenRecord.name == name)).scalar_one_or_none()
    if record is None:
        names = session.execute(select(TokenRecord.name)).scalars().all()
        raise NotFoundError(f"no token {name!r}{did_you_mean(name, names)}")
    if record.revoked_at is None:
        record.revoked_at = now()


def find_token(session: Session, token: str) -> TokenInfo | None:
    """The valid token ``token`` (its name and scopes); None when it is unknown or revoked."""
    record = session.execute(
        select(TokenRecord).where(TokenRecord.token_hash == token_hash(token))
    ).scalar_one_or_none()
    if record is None or record.revoked_at is not None:
        return None
    return TokenInfo(record.name, [str(s) for s in record.scopes], record.created_at, record.revoked_at)


def list_tokens(session: Session) -> list[TokenInfo]:
    """Every token by name (never the token itself)."""
    rows = session.execute(select(TokenRecord).order_by(TokenRecord.name)).scalars()
    return [TokenInfo(r.name, [str(s) for s in r.scopes], r.created_at, r.revoked_at) for r in rows]
