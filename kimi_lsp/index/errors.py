"""Errors of the workspace index.

::

    KimiLspError (kimi_lsp.errors: carries the user-facing ``message``)
    IndexError_ (base: anything the index reports to a user)
     ├── LanguageUnavailable   a grammar wheel is missing or incompatible
     ├── NotInWorkspace        a path outside every workspace folder
     └── BadDocumentChange     an editor change that does not fit the document

A corrupt or outdated index database is not an error: it is rebuilt (and logged). Unreadable
files, bad encodings, huge/binary/minified files are skipped and logged, never raised.
"""

from __future__ import annotations

from pathlib import Path

from kimi_lsp.errors import KimiLspError


class IndexError_(KimiLspError):
    """Base class of every error the index raises."""


class LanguageUnavailable(IndexError_):
    def __init__(self, language: str, module: str, cause: BaseException) -> None:
        super().__init__(
            f"The {language} grammar ({module}) could not be loaded: {cause}. "
            f'Reinstall kimi-lsp (pip install -e ".") to get the grammar wheels.'
        )
        self.language = language


class NotInWorkspace(IndexError_):
    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path} is outside every workspace folder, so it is not indexed. "
            "Open its folder as a workspace folder to index it."
        )
        self.path = path


class BadDocumentChange(IndexError_):
    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(
            f"An edit to {path} does not fit the document the index holds ({detail}). "
            "The index re-reads the whole buffer on the next full sync; reopen the file if "
            "symbols look stale."
        )
        self.path = path
