"""A refactor the client confirms before it touches the document.

Where the client supports change annotations (``workspace.workspaceEdit.changeAnnotationSupport``
with ``documentChanges``), the whole answer goes out once, at the end, as a ``WorkspaceEdit``
whose edits carry a ``needsConfirmation`` annotation. VS Code then shows its own Refactor
Preview (accept or discard per change) and nothing reaches the file, or the disk, until the
user accepts: no review block with conflict markers in the real file. Clients without it keep
the review block (Helix, plain clients).
"""

from __future__ import annotations

from lsprotocol import types as T

ANNOTATION_ID = "kimi-refactor"


def supports_confirmation(caps: T.ClientCapabilities | None) -> bool:
    """Does the client show (and honour) ``needsConfirmation`` change annotations?"""
    edit = caps.workspace.workspace_edit if caps and caps.workspace else None
    return bool(edit and edit.document_changes and edit.change_annotation_support is not None)


def confirmation_edit(
    uri: str,
    version: int | None,
    edits: list[T.TextEdit],
    label: str,
    description: str = "",
) -> T.WorkspaceEdit:
    """``edits`` to ``uri`` as one edit the user must confirm (``needsConfirmation``)."""
    annotated: list[T.TextEdit | T.AnnotatedTextEdit | T.SnippetTextEdit] = [
        T.AnnotatedTextEdit(range=e.range, new_text=e.new_text, annotation_id=ANNOTATION_ID)
        for e in edits
    ]
    return T.WorkspaceEdit(
        document_changes=[
            T.TextDocumentEdit(
                text_document=T.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
                edits=annotated,
            )
        ],
        change_annotations={
            ANNOTATION_ID: T.ChangeAnnotation(
                label=label, needs_confirmation=True, description=description or None
            )
        },
    )
