"""Base error of the pure package.

Every error the package raises on bad input derives from :class:`PrepaidError`, itself a
``ValueError``, with a message written for the person who has to fix the input (a property
manager, an installer), not for a developer.
"""


class PrepaidError(ValueError):
    """Bad input to the prepaid core: the message says what is wrong and how to fix it."""
