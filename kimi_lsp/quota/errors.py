"""Quota errors.

::

    QuotaError
    └── NeverFits       the request can never be admitted (bigger than the limit, or the
                        day's tokens are spent): fails at once, naming the limit and what to do
"""

from __future__ import annotations


class QuotaError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NeverFits(QuotaError):
    pass
