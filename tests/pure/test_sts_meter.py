"""The meter side of STS (prepaid_core.sts.StsMeter): tokens applied once, replays and
old tokens refused, management and key change tokens applied.

The key change case uses the CTSA05 tokens of tests/pure/data/sts_vectors.json
(NectarAPI/tokens-service, commit ea572db9f0eb4c96ab657b2c977518a69ca00b65).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_core import sts

VECTORS = json.loads((Path(__file__).parent / "data" / "sts_vectors.json").read_text())
VENDING_KEY = bytes.fromhex(VECTORS["dkga02_setup"]["vending_key"])
PAN = "600727000000000009"
KEY = sts.decoder_key_dkga02(VENDING_KEY, "123456", "01", 1, PAN)
START = datetime(2004, 3, 1, 12, 0)


def _credit(amount: str, minute: int, key: bytes = KEY) -> str:
    return sts.encode_credit(key, Decimal(amount), START + timedelta(minutes=minute), 7)


def test_credit_applied_once_and_replay_refused():
    meter = sts.StsMeter(KEY)
    token = _credit("12.5", 0)
    meter.enter(token)
    assert meter.credit == {0: Decimal("12.5")}
    with pytest.raises(sts.StsReplayError):
        meter.enter(token)
    assert meter.credit == {0: Decimal("12.5")}


def test_out_of_order_within_memory_accepted_older_than_memory_refused():
    meter = sts.StsMeter(KEY, memory=3)
    late, early = _credit("1", 10), _credit("2", 5)
    meter.enter(late)
    meter.enter(early)
    assert meter.credit[0] == Decimal("3")
    meter.enter(_credit("4", 20))
    oldest_forgotten = _credit("8", 1)
    with pytest.raises(sts.StsReplayError):
        meter.enter(oldest_forgotten)
    meter.enter(_credit("16", 30))
    with pytest.raises(sts.StsReplayError):
        meter.enter(early)  # forgotten now, and older than every remembered TID
    assert meter.credit[0] == Decimal("23")


@settings(max_examples=50, deadline=None)
@given(st.permutations(range(8)))
def test_any_order_within_memory_credits_each_token_once(order):
    meter = sts.StsMeter(KEY, memory=8)
    tokens = [_credit("1.5", minute) for minute in range(8)]
    for index in order:
        meter.enter(tokens[index])
    for token in tokens:
        with pytest.raises(sts.StsReplayError):
            meter.enter(token)
    assert meter.credit[0] == Decimal("12")


def test_management_tokens_applied():
    meter = sts.StsMeter(KEY)
    meter.enter(_credit("20", 0))
    meter.tampered = True
    meter.enter(sts.encode_max_power_limit(KEY, 5000, START + timedelta(minutes=1), 1))
    meter.enter(sts.encode_clear_tamper(KEY, START + timedelta(minutes=2), 1))
    meter.enter(sts.encode_clear_credit(KEY, START + timedelta(minutes=3), 0xFFFF, 1))
    assert (meter.max_power_watts, meter.tampered, meter.credit) == (5000, False, {0: 0})


def test_key_change_pair_replaces_the_key():
    case = VECTORS["key_change"][0]
    new_key = sts.decoder_key_dkga02(VENDING_KEY, "123456", "02", 1, PAN)
    meter = sts.StsMeter(KEY)
    with pytest.raises(sts.StsKeyChangeError):
        meter.enter(case["second"])
    meter.enter(case["first"])
    meter.enter(case["second"])
    assert (meter.decoder_key, meter.key_revision, meter.tariff_index) == (new_key, 1, 2)
    with pytest.raises(sts.StsCrcError):
        meter.enter(_credit("5", 40))  # still under the old key
    meter.enter(_credit("5", 40, new_key))
    assert meter.credit[0] == Decimal("5")
