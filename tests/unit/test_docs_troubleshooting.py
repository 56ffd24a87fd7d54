"""docs/troubleshooting.md stays true: each heading quotes a message the code still says."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def strings_in_the_package() -> list[str]:
    """Every string literal of kimi_lsp (implicitly joined pieces are one literal; an
    f-string gives its literal parts)."""
    found: list[str] = []
    for path in (ROOT / "kimi_lsp").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append(node.value)
    return found


def quoted_messages() -> list[str]:
    """The quoted parts of headings and bold quotes: `### "message"`, `**"message"**`.
    An ellipsis stands for a part the code fills in: each side is checked."""
    text = (ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    quotes = re.findall(r'^###\s+"([^"]+)"', text, re.M) + re.findall(r'\*\*"([^"]+)"\*\*', text)
    return [part.strip() for q in quotes for part in q.split("…") if part.strip()]


def test_every_quoted_message_is_one_the_code_says() -> None:
    messages = quoted_messages()
    assert len(messages) >= 15  # the page has not lost its headings
    strings = strings_in_the_package()
    missing = [m for m in messages if not any(m in s for s in strings)]
    assert missing == [], f"docs/troubleshooting.md quotes what the code no longer says: {missing}"
