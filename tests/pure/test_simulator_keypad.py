"""G7/G10/B7/B13: simulated meters keeping their own balance: STS keypad tokens (credit
at the meter's price, once, in any order within the memory; management tokens; key
change), preset credit on board, and a balance falsified without a token."""

import asyncio
import json
import signal
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

import pytest
from bleak import BleakClient
from test_simulator_collector import assert_cli_refuses
from test_simulator_mqtt import run_fleet, until

from prepaid_core import sts
from prepaid_core.protocols import ble as gatt
from prepaid_core.simulator import ble
from prepaid_core.simulator import meter as meter_module
from prepaid_core.simulator.clock import ManualClock, utc
from prepaid_core.simulator.meter import LoadProfile, MeterConfig, VirtualMeter
from prepaid_core.tokens import TokenAuthError, TokenKind, issue_keypad_token, issue_token

ADDR = "000000007001"
KEY = b"test vending key 0123456789abcdef"
VENDING_KEY = bytes.fromhex("abababababababab")
DECODER_KEY = sts.decoder_key_dkga02(VENDING_KEY, "123456", "01", 1, "60072700000700011")
FLAT_1KW = LoadProfile(base_w=1000, peak_w=1000, noise=0, shape=(1.0,) * 24, utc_offset_minutes=0)
START = utc(2026, 3, 1)


def make(clock=None, **config):
    config = {
        "vending_key": KEY,
        "profile": FLAT_1KW,
        "balance": Decimal(100),
        "price": Decimal("0.6"),
        "token_format": "sts",
        "decoder_key": DECODER_KEY,
        **config,
    }
    return VirtualMeter(MeterConfig(ADDR, **config), clock or ManualClock(START))


def credit(kwh, minute=0, key=DECODER_KEY, **kwargs):
    """An STS credit token for ``kwh`` issued ``minute`` minutes after START."""
    issued = START + timedelta(minutes=minute)
    return sts.encode_credit(key, Decimal(kwh), issued, base_date=sts.BASE_DATE_2014, **kwargs)


def management(subclass, value, minute):
    issued = START + timedelta(minutes=minute)
    return sts.encode_management(
        DECODER_KEY, 2, subclass, value, issued, base_date=sts.BASE_DATE_2014
    )


def drained(meter):
    return [(event.event, event.detail) for event in meter.drain_events()]


def test_credit_at_the_meters_price_exactly_once():
    meter = make(price=Decimal("0.6543"), balance=Decimal(0), alarm1=0, alarm2=0)
    assert meter.relay == "off"
    token = credit("12.3", minute=5)
    accepted = meter.enter_keypad(sts.format_token(token))  # typed in groups of four
    assert accepted.amount == Decimal("12.3")
    assert meter.balance == Decimal("8.04789")  # 12.3 x 0.6543, exact
    assert meter.credited_total == Decimal("8.04789")
    snap = meter.snapshot()
    assert snap.balance == Decimal("8.0479") and snap.relay == "on"
    tid = sts.minutes_since_base(START + timedelta(minutes=5), sts.BASE_DATE_2014)
    assert snap.last_token_tid == tid == accepted.tid
    assert meter.keypad.issued_at(accepted) == START + timedelta(minutes=5)
    with pytest.raises(sts.StsReplayError):
        meter.apply_token(token)
    assert meter.balance == Decimal("8.04789")
    assert drained(meter)[-3:] == [
        ("relay_on", "credit cleared"),
        ("token_accepted", f"STS CREDIT TID {tid}"),
        ("token_rejected", "StsReplayError"),
    ]


def test_tokens_out_of_order_within_the_memory_and_older_refused():
    meter = make(sts_memory=3, price=Decimal(1))
    for minute in (30, 10, 20, 40):  # any order while the memory is not full
        meter.enter_keypad(credit("1.5", minute))
    assert meter.balance == Decimal(106)
    with pytest.raises(sts.StsReplayError):
        meter.enter_keypad(credit("1.5", 10))  # older than every one remembered (20, 30, 40)
    meter.enter_keypad(credit("1.5", 25))  # within the window, not seen: accepted
    with pytest.raises(sts.StsReplayError):
        meter.enter_keypad(credit("1.5", 25))
    assert meter.balance == Decimal("107.5")
    assert meter.snapshot().last_token_tid == sts.minutes_since_base(
        START + timedelta(minutes=25), sts.BASE_DATE_2014
    )


def test_refusals_change_nothing_and_name_their_reason():
    meter = make(price=Decimal(1))
    other_key = sts.decoder_key_dkga02(VENDING_KEY, "123456", "01", 1, "60072700000700029")
    refused = {
        "StsCrcError": credit(5, 1, key=other_key),  # issued for another meter
        "StsFormatError": "1234",
        "StsKeyChangeError": sts.encode_key_change(DECODER_KEY, bytes(8), 2, 1)[1],
    }
    for reason, token in refused.items():
        with pytest.raises(sts.StsError):
            meter.enter_keypad(token)
        assert drained(meter)[-1] == ("token_rejected", reason)
    water = credit(5, 2, subclass=sts.CreditSubclass.WATER)
    with pytest.raises(sts.StsFormatError, match="electricity"):
        meter.enter_keypad(water)
    assert meter.balance == Decimal(100) and meter.credited_total == 0
    meter.enter_keypad(credit(5, 2))  # the electricity token of the same minute is new
    assert meter.balance == Decimal(105)


def test_water_meter_takes_water_credit_in_cubic_metres():
    meter = make(sts_credit=sts.CreditSubclass.WATER, price=Decimal("3.2"), balance=Decimal(0))
    meter.enter_keypad(credit("2.5", 1, subclass=sts.CreditSubclass.WATER))
    assert meter.balance == Decimal(8)  # 2.5 m3 x 3.2
    with pytest.raises(sts.StsFormatError):
        meter.enter_keypad(credit("2.5", 2))


def test_management_tokens():
    clock = ManualClock(START)
    meter = make(clock, price=Decimal(1), balance=Decimal(50))
    meter.enter_keypad(management(sts.Subclass.MAX_POWER_LIMIT, 500, 1))
    assert meter.overload_kw == Decimal("0.5")
    clock.advance(minutes=5)
    assert meter.snapshot().status_word & meter_module.OVERLOAD and meter.relay == "off"
    meter.enter_keypad(management(sts.Subclass.MAX_POWER_LIMIT, sts.encode_amount(2000), 2))
    assert meter.overload_kw == 2 and meter.relay == "on"  # a new limit re-arms the supply
    meter.inject_tamper("magnet")
    meter.enter_keypad(management(sts.Subclass.CLEAR_TAMPER, 0, 3))
    assert not meter.tamper
    clock.advance(hours=1)
    assert meter.snapshot().balance == Decimal(49)
    meter.enter_keypad(management(sts.Subclass.CLEAR_CREDIT, sts.CreditSubclass.WATER, 4))
    assert meter.balance == Decimal(49)  # another utility's register
    meter.enter_keypad(management(sts.Subclass.CLEAR_CREDIT, 0xFFFF, 5))
    assert meter.balance == 0 and meter.relay == "off"
    details = [detail for event, detail in drained(meter) if event == "token_accepted"]
    assert [d.rsplit(" TID", 1)[0] for d in details] == [
        "STS MAX_POWER_LIMIT",
        "STS MAX_POWER_LIMIT",
        "STS CLEAR_TAMPER",
        "STS CLEAR_CREDIT",
        "STS CLEAR_CREDIT",
    ]


def test_key_change_then_old_key_tokens_refused():
    meter = make(price=Decimal(1))
    new_key = sts.decoder_key_dkga02(VENDING_KEY, "654321", "02", 2, "60072700000700011")
    first, second = sts.encode_key_change(DECODER_KEY, new_key, key_revision=2, tariff_index=2)
    meter.enter_keypad(first)
    meter.enter_keypad(second)
    assert meter.keypad.decoder_key == new_key
    with pytest.raises(sts.StsCrcError):
        meter.enter_keypad(credit(5, 1))
    meter.enter_keypad(credit(5, 1, key=new_key))
    assert meter.balance == Decimal(105)
    accepted = [detail for event, detail in drained(meter) if event == "token_accepted"]
    assert accepted[:2] == ["STS KEY_CHANGE_1", "STS KEY_CHANGE_2"]


def test_own_format_meters_and_binary_tokens_unchanged():
    own = make(token_format="own", price=Decimal(1))
    own.enter_keypad(issue_keypad_token(KEY, ADDR, TokenKind.CREDIT, Decimal(3), 1))
    assert own.balance == Decimal(103) and own.snapshot().last_token_tid is None
    with pytest.raises(TokenAuthError):
        own.enter_keypad(credit(5, 1))  # an STS token means nothing to it
    meter = make(price=Decimal(1))
    meter.apply_token(issue_token(KEY, ADDR, TokenKind.CREDIT, Decimal(7), 1))
    assert meter.balance == Decimal(107) and meter.snapshot().last_token_sequence == 1
    with pytest.raises(sts.StsCrcError):  # 20 digits on an STS meter are STS
        meter.enter_keypad(issue_keypad_token(KEY, ADDR, TokenKind.CREDIT, Decimal(3), 2))


@pytest.mark.parametrize(
    ("token_format", "preset", "overdraft"),
    [("sts", Decimal(10), Decimal(0)), ("own", Decimal(10), Decimal(0)), ("sts", 2, 5)],
)
def test_preset_credit_then_first_recharge_vends_recharge_minus_preset(
    token_format, preset, overdraft
):
    """B7 as the server applies it: the meter runs on preset P before the account opens,
    the first recharge R vends R - P, and the meter ends at R - use."""
    clock = ManualClock(START)
    meter = make(
        clock,
        token_format=token_format,
        balance=preset,
        price=Decimal("1.25"),
        overdraft_limit=overdraft,
        alarm1=0,
        alarm2=0,
        alarm2_cut_seconds=0,
    )
    clock.advance(hours=2, minutes=24)  # 2.4 kWh at 1.25: use 3
    use = Decimal(3)
    assert meter.snapshot().balance == preset - use
    recharge = Decimal(50)
    vended = recharge - preset
    if token_format == "sts":
        token = credit(vended / meter.price, minute=200)
    else:
        token = issue_token(KEY, ADDR, TokenKind.CREDIT, vended, 1)
    meter.apply_token(token)
    assert meter.balance == recharge - use
    assert meter.snapshot().balance == recharge - use and meter.relay == "on"


def test_balance_tamper_moves_the_balance_without_a_token():
    clock = ManualClock(START)
    meter = make(clock, price=Decimal(1), balance=Decimal(20))
    meter.enter_keypad(credit(10, 1))
    clock.advance(hours=1)
    meter.inject_balance_tamper(Decimal("25.5"))
    assert meter.balance == Decimal("54.5")  # 20 + 10 - 1 + 25.5
    assert meter.credited_total == Decimal(10)  # no token carried it
    assert meter.status_word() & meter_module.TAMPER_COVER
    assert ("tamper_cover", "balance moved by 25.5") in drained(meter)
    meter.inject_balance_tamper(Decimal(-60))
    assert meter.balance == Decimal("-5.5") and meter.relay == "off"
    meter.enter_keypad(management(sts.Subclass.CLEAR_TAMPER, 0, 2))
    assert not meter.status_word() & meter_module.TAMPER_COVER
    with pytest.raises(ValueError):
        meter.inject_balance_tamper(Decimal("NaN"))


def test_bad_sts_configuration_is_refused():
    with pytest.raises(ValueError, match="decoder key"):
        make(decoder_key=None)
    with pytest.raises(ValueError, match="8 bytes"):
        make(decoder_key=b"short")
    with pytest.raises(ValueError, match="token format"):
        make(token_format="card")


def test_mqtt_meter_applies_an_sts_credit_token_once(mosquitto):
    async def scenario(fleet, server, addresses):
        address = addresses[0]
        meter = fleet[address].meter
        token = credit(20, minute=1)
        first = server.command(address, "credit_token", {"token": token})
        await until(lambda: server.acks(address, first), what="token ack")
        ack = server.acks(address, first)[0]
        assert ack.result == "ok"
        assert meter.credited_total == Decimal(12)  # 20 kWh x 0.6
        replay = server.command(address, "credit_token", {"token": token})
        await until(lambda: server.acks(address, replay), what="replay ack")
        refused = server.acks(address, replay)[0]
        assert refused.result == "failed" and refused.error.startswith("StsReplayError")
        await until(
            lambda: any(e.event == "token_rejected" for e in server.of(address, "event")),
            what="token events",
        )
        events = [(e.event, e.detail) for e in server.of(address, "event")]
        assert ("token_rejected", "StsReplayError") in events
        assert any(e == "token_accepted" and d.startswith("STS CREDIT") for e, d in events)
        assert meter.credited_total == Decimal(12)

    run_fleet(
        mosquitto,
        1,
        scenario,
        prefix=123,
        token_format="sts",
        decoder_key=DECODER_KEY,
        price=Decimal("0.6"),
    )


def test_ble_meter_applies_an_sts_token():
    meter = make(price=Decimal(1), balance=Decimal(10))
    network = ble.FakeBleNetwork()
    network.add(ble.BlePeripheral(meter, "C0:FF:EE:00:70:01"))
    token = credit("4.5", minute=3)

    async def main():
        async with BleakClient(
            "C0:FF:EE:00:70:01", backend=ble.FakeBleakBackend, network=network
        ) as client:
            result = await gatt.send_token(client, token)
            tid = sts.minutes_since_base(START + timedelta(minutes=3), sts.BASE_DATE_2014)
            assert result == gatt.TokenResult(gatt.TokenStatus.ACCEPTED, tid, Decimal("14.5"))
            replay = await gatt.send_token(client, token)
            assert replay.status == gatt.TokenStatus.REPLAYED and replay.balance == Decimal("14.5")
            other = credit(1, 4, key=bytes(8))
            assert (await gatt.send_token(client, other)).status == gatt.TokenStatus.NOT_AUTHENTIC

    asyncio.run(main())
    assert meter.credited_total == Decimal("4.5")


def test_cli_sts_meters_and_tokens_typed_on_their_keypads(tmp_path):
    """``--sts-meter`` on a bus meter and on a keypad-only meter; ``--keypad`` types the
    tokens of stdin lines on them (speed 1e-6: no consumption during the test)."""
    key_file = tmp_path / "sts.key"
    key_file.write_text(VENDING_KEY.hex())
    bus_meter, keypad_meter = "000010010001", "000000007001"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "prepaid_core.simulator", "--json", "--keypad"),
            *("--collectors", "1", "--buses", "1", "--meters", "1", "--base-port", "0"),
            *("--speed", "0.000001", "--duration", "30", "--price", "0.6"),
            *("--sts-vending-key-file", str(key_file), "--sts-sgc", "123456"),
            *("--sts-meter", f"{bus_meter}=00000700029"),
            *("--sts-meter", f"{keypad_meter}=60072700000700011"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        fleet = json.loads(process.stdout.readline())
        assert fleet["sts"] == [
            {"address": bus_meter, "meter_number": "00000700029", "keypad_only": False},
            {"address": keypad_meter, "meter_number": "60072700000700011", "keypad_only": True},
        ]
        bus_key = sts.decoder_key_dkga02(VENDING_KEY, "123456", "01", 1, "60072700000700029")
        typed = {
            (keypad_meter, sts.format_token(credit("12.3", 1))): ("STS CREDIT", "107.3800"),
            (keypad_meter, credit("12.3", 1)): ("StsReplayError", "107.3800"),
            (bus_meter, credit(10, 2, key=bus_key)): ("STS CREDIT", "106.0000"),
            (bus_meter, credit(10, 3)): ("StsCrcError", "106.0000"),
        }
        for (address, token), (said, balance) in typed.items():
            process.stdin.write(f"{address} {token}\n")
            process.stdin.flush()
            result = json.loads(process.stdout.readline())
            assert result["address"] == address and result["balance"] == balance
            assert said in (result.get("token") or result["error"])
        process.stdin.write("999999999999 1234\n")
        process.stdin.flush()
        assert json.loads(process.stdout.readline())["error"] == "no such meter"
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0


def test_cli_refuses_sts_meters_without_their_key():
    assert_cli_refuses("--sts-meter", "000000007001=00000700011")
    key = ("--sts-vending-key", "ab" * 8, "--sts-sgc", "123456")
    assert_cli_refuses("--sts-meter", "7001=00000700011", *key)
    assert_cli_refuses("--sts-meter", "000000007001=123", *key)
