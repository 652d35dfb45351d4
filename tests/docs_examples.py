"""Where the documentation's examples live: files the guide pages include and the tests run."""

from pathlib import Path

DOCS_SRC = Path(__file__).parent.parent / "docs_src"
