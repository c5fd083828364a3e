"""Base error of the pure package.

Every error the package raises on bad input derives from :class:`PrepaidError`, itself a
``ValueError``, with a message written for the person who has to fix the input (a property
manager, an installer), not for a developer.

An error a person can meet in an application also carries a stable ``code`` (e.g.
``"alarm.order"``) and the ``values`` its wording needs (amounts as ``Decimal``): the English
message stays for logs and tests, and an application words the code in its user's language
(the add-ons: ``prepaid_meter/tools/prepaid_errors.py``; see docs/glossary.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


class PrepaidError(ValueError):
    """Bad input to the prepaid core: the message says what is wrong and how to fix it;
    ``code`` and ``values`` let a caller word it in another language ("" when it has none)."""

    def __init__(self, message: str = "", *, code: str = "", values: Mapping | None = None):
        super().__init__(message)
        self.code = code
        self.values = MappingProxyType(dict(values or {}))
