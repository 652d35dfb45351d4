"""``/tokens`` (admin): API tokens listed, made (the plain token is in that one answer only) and revoked."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from evergreen.serving import create_token, revoke_token, tokens
from evergreen.store import TokenInfo

from ._deployments import NAME_PATTERN, problems
from ._pages import Page, PageQuery, bad_cursor, page_of
from ._security import require, settings_of

router = APIRouter(tags=["tokens"])

#: The scopes a token may have (:data:`evergreen.store.SCOPES`).
Scope = Literal["predict", "feedback", "read", "operate", "admin"]


class Token(BaseModel):
    """A token's name, scopes and dates; the token itself is never shown again after it is made."""

    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class NewToken(BaseModel):
    """A token to make."""

    name: str = Field(min_length=1, max_length=255, pattern=r"^\S+$", description="A name to revoke it by.")
    scopes: list[Scope] = Field(min_length=1, description="What it may do: read, operate, predict, feedback, admin.")


class IssuedToken(Token):
    """The token just made, with the token itself: keep it now, only its hash is stored."""

    token: str


TokenName = Annotated[str, Path(pattern=NAME_PATTERN, description="The token's name.")]


@router.get("/tokens", dependencies=[Depends(require("admin"))], responses=problems(400))
def list_tokens(request: Request, page: Annotated[PageQuery, Depends()]) -> Page[Token]:
    """Every token by name, revoked ones too (never the token itself)."""
    after = page.after()
    if after is not None and not isinstance(after, str):
        raise bad_cursor(page)
    found = tokens(after=after, limit=page.limit + 1, settings=settings_of(request))
    return page_of(found, page, lambda t: t.name, _token)


@router.post(
    "/tokens",
    status_code=201,
    dependencies=[Depends(require("admin"))],
    responses=problems(409),
)
def make_token(request: Request, body: NewToken) -> IssuedToken:
    """Make a token; the answer holds the token, which no later request can show."""
    issued = create_token(body.name, body.scopes, settings=settings_of(request))
    return IssuedToken(
        name=issued.name, scopes=issued.scopes, created_at=issued.created_at, revoked_at=None, token=issued.token
    )


@router.post("/tokens/{name}:revoke", dependencies=[Depends(require("admin"))], responses=problems(404))
def revoke(request: Request, name: TokenName) -> Token:
    """Make the token unusable (servers stop accepting it within a few seconds); it stays listed."""
    return _token(revoke_token(name, settings=settings_of(request)))


def _token(t: TokenInfo) -> Token:
    return Token.model_validate(t, from_attributes=True)
