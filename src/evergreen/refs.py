"""``Ref``: how a user names a version of something (a dataset, a model, a feature view), parsed in one place."""

from __future__ import annotations

from dataclasses import dataclass

from evergreen.errors import RefError


@dataclass(frozen=True)
class Ref:
    """``name`` (no version: the latest, or what the caller defaults to), ``name@3`` (a version number) or
    ``name@production`` (an alias, or for datasets a content-id prefix).

    ``selector`` is what follows the ``@`` as text (``"3"``, ``"production"``), or None.
    """

    name: str
    selector: str | None = None

    @classmethod
    def parse(cls, text: str, *, what: str = "reference", example: str = "churn@3") -> Ref:
        """Split ``text`` at its last ``@``; ``what`` and ``example`` name the thing in the error.

        Raises:
            RefError: an empty name or an empty part after ``@``.
        """
        if not isinstance(text, str):
            raise RefError(f"{what} must be text such as {example!r}, but got {type(text).__name__} {text!r}")
        name, sep, selector = text.strip().rpartition("@")
        if not sep:
            name, selector = text.strip(), ""
        if not name or (sep and not selector):
            raise RefError(f"{what} {text!r} is not of the form NAME, NAME@VERSION or NAME@ALIAS (e.g. {example!r})")
        return cls(name, selector or None)

    @property
    def number(self) -> int | None:
        """The version number when the selector is one (``name@3`` → 3), else None."""
        return int(self.selector) if self.selector is not None and self.selector.isdecimal() else None

    def numbered(self, *, what: str = "reference", example: str = "churn@3") -> int | None:
        """The version number, None when no version was given; an alias here is refused.

        Raises:
            RefError: the selector is not a number.
        """
        if self.selector is not None and self.number is None:
            raise RefError(f"{what} {str(self)!r} is not of the form NAME or NAME@VERSION (e.g. {example!r})")
        return self.number

    def __str__(self) -> str:
        return self.name if self.selector is None else f"{self.name}@{self.selector}"
