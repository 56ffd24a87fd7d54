"""Positions, written once (a leaf: it imports nothing from kimi_lsp).

LSP counts a position's ``character`` in the encoding the client and server negotiated
(``positionEncoding``: ``"utf-8"`` bytes, ``"utf-16"`` code units — the default — or
``"utf-32"`` code points, which are Python string indices). Where conversion happens:

- Inside kimi-lsp, columns count **UTF-16** code units (the index's spans, ``Target.span``,
  the edits ``edits.stream`` computes). Library functions that read or write LSP positions take
  an ``encoding`` argument that defaults to ``"utf-16"``.
- At the LSP boundary (``kimi_lsp.server.convert``) every position is converted with the text
  of the line it refers to: positions a client sends (command and hover positions, selections,
  code action ranges) from the negotiated encoding, positions the server sends (streamed
  edits, symbol ranges) into it (``convert_column``; ``edits.stream.convert_edits``). Where the
  library works on the client's text directly it takes the ``encoding`` instead: the index's
  ``didChange`` (``WorkspaceIndex.change_document``), review Accept/Reject
  (``edits.stream.resolve_review``) and a workspace refactor's edits (``RegionWriter``).

Here also: byte columns for tree-sitter, LSP's line splitting, the invalid bytes an editor
may send (kept as lone surrogates, ``utf8_bytes``; made valid for prompts, ``valid_text``),
and where a position's file is: its root-relative name (``relative``) and its text as the
editor has it, the open buffer else the disk (``read_text``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

Encoding = Literal["utf-8", "utf-16", "utf-32"]
ENCODINGS: tuple[Encoding, ...] = ("utf-8", "utf-16", "utf-32")
DEFAULT: Encoding = "utf-16"
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def encoding_of(value: object) -> Encoding:
    """A negotiated ``positionEncoding`` (a string or an enum) as an ``Encoding``; LSP's
    default, UTF-16, for anything else (a client that negotiated nothing)."""
    raw = getattr(value, "value", value)
    return raw if raw in ENCODINGS else DEFAULT


def char_len(ch: str, encoding: Encoding = DEFAULT) -> int:
    """How many units one character counts in ``encoding``."""
    cp = ord(ch)
    if encoding == "utf-32":
        return 1
    if encoding == "utf-16":
        return 2 if cp > 0xFFFF else 1
    if 0xDC80 <= cp <= 0xDCFF:  # an invalid byte the editor sent, kept (``utf8_bytes``)
        return 1
    return 1 if cp < 0x80 else 2 if cp < 0x800 else 3 if cp < 0x10000 else 4


def text_len(text: str, encoding: Encoding = DEFAULT) -> int:
    """The length of ``text`` in ``encoding``'s units."""
    if encoding == "utf-32" or text.isascii():
        return len(text)
    if encoding == "utf-16":
        return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)
    return len(utf8_bytes(text))


def utf8_bytes(text: str) -> bytes:
    """``text`` as UTF-8, with the invalid bytes an editor sent (read as lone surrogates
    U+DC80..U+DCFF, ``surrogateescape``) back as those bytes; other lone surrogates as "?"."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def utf16_len(text: str) -> int:
    """The length of ``text`` in UTF-16 code units (the library's columns)."""
    return text_len(text, "utf-16")


def to_index(line: str, character: int, encoding: Encoding = DEFAULT) -> int:
    """An LSP column on ``line`` as a Python string index. A column inside a character moves
    to the character's end; past the line's end it clamps to the end, as LSP says."""
    if encoding == "utf-32" or line.isascii():
        return max(0, min(character, len(line)))
    units = 0
    for i, ch in enumerate(line):
        if units >= character:
            return i
        units += char_len(ch, encoding)
    return len(line)


def to_character(line: str, index: int, encoding: Encoding = DEFAULT) -> int:
    """A Python string index on ``line`` as an LSP column in ``encoding``."""
    return text_len(line[:index], encoding)


def convert_column(line: str, character: int, source: Encoding, target: Encoding) -> int:
    """A column on ``line`` counted in ``source`` as counted in ``target``."""
    if source == target or line.isascii():
        return character
    return to_character(line, to_index(line, character, source), target)


def byte_to_character(line: bytes, byte_col: int, encoding: Encoding = DEFAULT) -> int:
    """A byte column into a UTF-8 line (tree-sitter's) as an LSP column in ``encoding``."""
    if encoding == "utf-8":
        return byte_col
    prefix = line[:byte_col]
    if prefix.isascii():
        return len(prefix)
    return text_len(prefix.decode("utf-8", "surrogateescape"), encoding)


def character_to_byte(line: bytes, character: int, encoding: Encoding = DEFAULT) -> int:
    """An LSP column on a UTF-8 line as a byte column (clamped to the line)."""
    if line.isascii():
        return max(0, min(character, len(line)))
    if encoding == "utf-8":
        return max(0, min(character, len(line)))  # a column inside a character stays as sent
    text = line.decode("utf-8", "surrogateescape")  # an invalid byte: one character
    return len(utf8_bytes(text[: to_index(text, character, encoding)]))


_LONE = re.compile("[\ud800-\udfff]")


def valid_text(text: str) -> str:
    """``text`` without lone surrogates (the invalid bytes an editor sent, see
    ``utf8_bytes``): each becomes U+FFFD, one character for one, so string indices and UTF-16
    columns stay. For what is parsed, hashed or sent; positions count on the text as sent."""
    return _LONE.sub("\ufffd", text)


def lsp_lines(text: str) -> list[str]:
    """Lines with their breaks, split only where LSP splits (``\\n``, ``\\r\\n``, ``\\r``)."""
    return [m.group(0) for m in _LINE.finditer(text)]


def text_lines(text: str) -> list[str]:
    """Lines without their breaks, split where LSP and the index split: ``str.splitlines``
    also splits at form feeds (common in Python sources), U+2028 and more, which shifts every
    line number after them."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")  # at C speed: the same lines as ``lsp_lines``, without breaks
    if lines[-1] == "":
        lines.pop()  # a final break ends the last line, it does not start one
    return lines


def line_text(lines: Sequence[str], line: int) -> str:
    """Line ``line`` of ``lsp_lines`` without its break ("" past the end)."""
    return lines[line].rstrip("\r\n") if 0 <= line < len(lines) else ""


def relative(path: Path, roots: Sequence[Path]) -> str:
    """``path`` from the first root that holds it, with forward slashes (how prompts, diffs
    and the repository map name files); an absolute path when no root holds it."""
    for root in roots:
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return path.as_posix()


def read_text(path: Path, buffer: str | None = None, *, strict: bool = False) -> str | None:
    """A file as the editor has it: ``buffer`` (its open document) when there is one, else
    the disk. Bytes that are not UTF-8 become U+FFFD, unless ``strict`` (a file that will be
    rewritten whole must not lose them): then None, as for a file that cannot be read."""
    if buffer is not None:
        return buffer
    try:
        return path.read_text(encoding="utf-8", errors="strict" if strict else "replace")
    except (OSError, UnicodeDecodeError):
        return None


__all__ = [
    "DEFAULT",
    "ENCODINGS",
    "Encoding",
    "byte_to_character",
    "char_len",
    "character_to_byte",
    "convert_column",
    "encoding_of",
    "line_text",
    "lsp_lines",
    "read_text",
    "relative",
    "text_len",
    "text_lines",
    "to_character",
    "to_index",
    "utf8_bytes",
    "utf16_len",
    "valid_text",
]
