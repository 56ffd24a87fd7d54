"""Quota errors.

::

    KimiLspError (kimi_lsp.errors: carries the user-facing ``message``)
    QuotaError
    └── NeverFits       the request can never be admitted (bigger than the limit, or the
                        day's tokens are spent): fails at once, naming the limit and what to do
"""

from __future__ import annotations

from kimi_lsp.errors import KimiLspError


class QuotaError(KimiLspError):
    pass


class NeverFits(QuotaError):
    pass
