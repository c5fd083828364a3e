"""The STS keypad of a simulated meter (G10): which 20-digit tokens it takes, and once.

``StsKeypad`` wraps ``prepaid_core.sts.StsMeter`` (decoder key, memory of recent token
identifiers, key change pair) for one meter of one utility: class 0 credit of another
subclass (water typed into an electricity meter) is refused before it touches the memory.
What a token does to the meter's money, supply and tamper state is the meter's business
(``VirtualMeter.apply_token``); this class only says what was accepted.
"""

from __future__ import annotations

from datetime import datetime

from prepaid_core import sts

__all__ = ["StsKeypad", "describe"]


class StsKeypad:
    """Token handling of an STS keypad meter taking class 0 credit of ``credit_subclass``."""

    def __init__(
        self,
        decoder_key: bytes,
        *,
        memory: int = 50,
        base_date: datetime = sts.BASE_DATE_2014,
        credit_subclass: int = sts.CreditSubclass.ELECTRICITY,
    ):
        if len(decoder_key) != 8:
            raise ValueError("an STS decoder key is 8 bytes")
        if memory < 1:
            raise ValueError("the token identifier memory holds at least one token")
        self.meter = sts.StsMeter(decoder_key, memory)
        self.base_date = base_date
        self.credit_subclass = sts.CreditSubclass(credit_subclass)
        #: the identifier of the last token accepted (None before the first)
        self.last_tid: int | None = None

    @property
    def decoder_key(self) -> bytes:
        return self.meter.decoder_key

    def enter(self, digits: str) -> sts.StsToken | sts.KeyChange:
        """Check and accept one token (``StsError`` if refused, nothing remembered then)."""
        content = sts.decode(digits, self.meter.decoder_key)
        if (
            isinstance(content, sts.StsToken)
            and content.token_class == sts.CLASS_CREDIT
            and content.subclass != self.credit_subclass
        ):
            raise sts.StsFormatError(
                f"This meter takes {self.credit_subclass.name.lower()} credit, "
                f"not credit of subclass {content.subclass}."
            )
        content = self.meter.enter(digits)
        if isinstance(content, sts.StsToken):
            self.last_tid = content.tid
        return content

    def issued_at(self, token: sts.StsToken) -> datetime:
        """When ``token`` was issued, by this meter's base date."""
        return token.issued_since(self.base_date)

    def clears_credit(self, token: sts.StsToken) -> bool:
        """Whether a clear credit token clears this meter's register."""
        return token.value in (0xFFFF, self.credit_subclass)


def describe(content: sts.StsToken | sts.KeyChange) -> str:
    """The meter event's detail of an accepted STS token, e.g. ``STS CREDIT TID 6312345``."""
    if isinstance(content, sts.KeyChange):
        return f"STS {sts.Subclass(content.subclass).name}"
    if content.token_class == sts.CLASS_CREDIT:
        return f"STS CREDIT TID {content.tid}"
    return f"STS {sts.Subclass(content.subclass).name} TID {content.tid}"
