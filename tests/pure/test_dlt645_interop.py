"""The DL/T645 driver against meters it was not written with: the meter side of the PyPI
package ``dlt645`` (``MeterServerService`` on TCP, Apache-2.0), one meter per port as a
collector's transparent port would show it.

What that meter answers (found here, kept by these tests): energy, tariff, power, status
word and clock items one by one; the energy *blocks* (0000FF00H...) with "no data" (02H),
as many real meters do; no remaining amount (00900200H: "no data"); read address (13H).
It has no relay control (1CH), no price or threshold items, no daily freeze (0506xxxxH)
and no DL/T645-1997: it answers those with an error reply, which the driver reports as
refusals.  Its ``set_address`` takes the address in wire order (low byte first).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from prepaid_core.buses import common, dlt645_tcp
from prepaid_core.buses.common import CommandJob, LinkSettings, MeterJob
from prepaid_core.gateway_runner import collector
from prepaid_core.protocols import dlt645 as codec
from prepaid_core.protocols import dlt645_data
from prepaid_core.protocols.dlt645_data import DLT645Error

dlt645 = pytest.importorskip("dlt645", reason="the dlt645 package is not installed")

ADDRESS = "123456789012"
#: combined active total and tariffs 1 to 4, forward active total and tariff 1, reverse
ENERGY = {
    0x00000000: 1234.56,
    0x00000100: 100.25,
    0x00000200: 200.5,
    0x00000300: 300.75,
    0x00000400: 633.06,
    0x00010000: 1200.5,
    0x00010100: 99.99,
    0x00020000: 34.06,
}
BLOCK_COMBINED = 0x0000FF00


@pytest.fixture(scope="module")
def served():
    """One meter of the ``dlt645`` package on a free TCP port (it takes a second to start
    and stop: shared by the tests, set again by each), its log silent."""
    dlt645.configure_logging(enabled=False)
    meter = dlt645.MeterServerService.new_tcp_server("127.0.0.1", 0, timeout=0.1)
    meter.enable_message_capture(queue_size=1000)
    with meter:
        yield meter


@pytest.fixture
def meter(served):
    return set_meter(served)


def set_meter(meter, address=ADDRESS, status_word="0000"):
    """The meter's address (the package keeps it in wire order), energy (``ENERGY``),
    power, status word 3 and clock (not set); what it received so far forgotten."""
    meter.set_address(bytes.fromhex(address)[::-1])
    for di, value in ENERGY.items():
        assert meter.set_00(di, value)
    assert meter.set_02(0x02030000, 1.2345)
    assert meter.set_04(0x04000503, status_word)
    assert meter.set_04(0x04000101, "00000000")  # its clock as it starts: never set
    assert meter.set_04(0x04000102, "000000")
    meter.clear_captured_messages()
    return meter


def settings(meter, **values) -> LinkSettings:
    return LinkSettings("127.0.0.1", meter.server.port, timeout=0.5, retries=0, **values)


def asked(meter) -> list[bytes]:
    """The requests the meter received, as sent (wake-up bytes included)."""
    return [record.data for record in meter.get_captured_rx_messages()]


def asked_dis(meter) -> list[int]:
    """The data identifiers of the read requests the meter received."""
    dis = []
    for data in asked(meter):
        frame = codec.parse_frame(data)
        if frame.function == codec.Function.READ:
            dis.append(int.from_bytes(frame.data[:4], "little"))
    return dis


def poll_one(meter, **job) -> object:
    [result] = dlt645_tcp.poll_bus(settings(meter), [MeterJob(7, ADDRESS, **job)]).meters
    return result


def test_combined_energy_read_item_by_item_when_the_block_is_refused(meter):
    result = poll_one(meter)
    assert result.ok, result.error
    assert asked_dis(meter)[:2] == [BLOCK_COMBINED, 0x00000000]
    assert result.values["read_mode"] == "items"
    assert result.values["forward_total"] == Decimal("1234.56")
    assert [result.values[band] for band in dlt645_tcp.TOU_BANDS] == [
        Decimal("100.25"),
        Decimal("200.50"),
        Decimal("300.75"),
        Decimal("633.06"),
    ]
    assert result.values["power"] == Decimal("1.2345")
    assert result.values["relay_state"] == "on"
    assert "reverse_total" not in result.values


def test_remembered_single_items_ask_no_block_on_an_open_link(meter):
    link = dlt645_tcp.Link(settings(meter))
    job = MeterJob(7, ADDRESS)
    with link:
        first = common.serve_bus(link, [job], dlt645_tcp.serve_meter, (DLT645Error,))
        blocks_asked = asked_dis(meter).count(BLOCK_COMBINED)
        job.read_mode = first.meters[0].values["read_mode"]
        second = common.serve_bus(link, [job], dlt645_tcp.serve_meter, (DLT645Error,))
    assert asked_dis(meter).count(BLOCK_COMBINED) == blocks_asked == 1
    assert job.read_mode == "items"
    assert second.meters[0].values["forward_total"] == Decimal("1234.56")


def test_a_model_that_reads_single_items_never_asks_a_block(meter):
    result = poll_one(meter, read_way="items")
    assert BLOCK_COMBINED not in asked_dis(meter)
    assert result.ok and result.values["read_mode"] == "items"


def test_a_model_that_reads_blocks_only_gets_a_refusal_not_a_lost_meter(meter):
    result = poll_one(meter, read_way="block")
    assert asked_dis(meter) == [BLOCK_COMBINED]
    assert not result.ok and result.answered
    assert "refused its energy as a block (its model reads blocks only)" in result.error
    assert "0000FF00H" in result.error


@pytest.mark.parametrize(
    ("register", "total", "reverse"),
    [
        ("combined", Decimal("1234.56"), None),
        ("forward", Decimal("1200.50"), None),
        ("forward_reverse", Decimal("1200.50"), Decimal("34.06")),
    ],
)
def test_the_billing_register_of_the_model_is_read(meter, register, total, reverse):
    result = poll_one(meter, billing_register=register)
    assert result.ok, result.error
    assert result.values["forward_total"] == total
    assert result.values.get("reverse_total") == reverse
    if register != "combined":  # the forward register's own tariff 1
        assert result.values["tou_sharp"] == Decimal("99.99")


def test_a_meter_without_remaining_amount_is_read_without_balance(meter):
    result = poll_one(meter, read_balance=True)
    assert 0x00900200 in asked_dis(meter)
    assert result.ok, result.error
    assert "meter_balance" not in result.values


@pytest.mark.parametrize("wake_up", [0, 2, 4])
def test_requests_open_with_the_models_wake_up_bytes(meter, wake_up):
    result = poll_one(meter, wake_up_bytes=wake_up)
    requests = asked(meter)
    assert result.ok, result.error
    assert requests and all(r.startswith(b"\xfe" * wake_up + b"\x68") for r in requests)


def test_wake_up_bytes_outside_0_to_4_fail_the_meter_naming_the_field(meter):
    result = poll_one(meter, wake_up_bytes=5)
    assert asked(meter) == []
    assert not result.ok and "wake-up bytes: 5 is not 0 to 4" in result.error


def test_status_word_3_gives_the_relay_state(meter):
    set_meter(meter, status_word="0010")  # bit 4: relay open
    result = poll_one(meter)
    assert result.values["relay_state"] == "off"
    assert result.values["status_word"] == 0x10


def test_read_address_commissions_the_only_meter_of_the_bus(meter):
    set_meter(meter, address="000000004321")
    assert dlt645_tcp.read_bus_address(settings(meter)) == "000000004321"


def test_relay_and_price_commands_are_refused_for_good_by_a_meter_without_them(meter):
    commands = [
        CommandJob(1, "relay_off"),
        CommandJob(2, "price", {"price": "0.5"}),
    ]
    result = poll_one(meter, commands=commands)
    assert result.ok, result.error  # the reading still goes through
    relay, price = result.outcomes
    assert not relay.success and relay.permanent and "error reply to 1CH" in relay.reason
    assert not price.success and price.permanent and "error reply to 14H" in price.reason


def test_no_daily_freeze_and_the_clock_read(meter):
    local = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    weekday = local.isoweekday() % 7
    assert meter.set_04(0x04000101, f"{local:%y%m%d}{weekday:02d}")
    assert meter.set_04(0x04000102, f"{local:%H%M%S}")
    result = poll_one(meter, read_daily_frozen=True, read_clock=True)
    assert result.ok, result.error
    assert result.values["daily_frozen"] is None  # it keeps none: the reading stays
    clock = result.values["clock"]
    utc_offset = dt.timedelta(minutes=LinkSettings("h", 1).utc_offset_minutes)
    # the meter was set to UTC while the driver expects UTC+8: 8 hours behind
    assert abs(clock["drift_seconds"] + utc_offset.total_seconds()) <= 5


def test_a_clock_never_set_is_not_known_and_the_reading_stays(meter):
    result = poll_one(meter, read_clock=True)
    assert result.ok, result.error
    assert result.values["forward_total"] == Decimal("1234.56")
    clock = result.values["clock"]
    assert (clock["meter_at"], clock["drift_seconds"]) == (None, None)
    assert clock["checked_at"] is not None


def test_dlt645_1997_reads_are_refused_by_a_2007_only_meter(meter):
    [result] = dlt645_tcp.poll_bus_1997(settings(meter), [MeterJob(7, ADDRESS)]).meters
    assert not result.ok and result.answered
    assert "901FH" in result.error and "9010H" in result.error


def test_read_order_of_a_model_that_forces_a_way():
    assert dlt645_data.read_order("", "block") == ("block",)
    assert dlt645_data.read_order("block", "items") == ("items",)
    assert dlt645_data.read_order("items", "auto") == ("items", "block")
    with pytest.raises(dlt645_data.ValueRangeError, match="read way"):
        dlt645_data.read_order("", "sometimes")


def test_the_runners_config_carries_the_models_read_way_and_wake_up_bytes(meter):
    """The gateway runner's job of a meter of the collector config reads it as Odoo's
    poll does: the model's way and wake-up bytes, today's defaults when the config (an
    older server) names none."""
    plain = collector._meter_template(0, {"address": ADDRESS})
    assert (plain.read_way, plain.wake_up_bytes) == ("auto", 4)
    quirky = collector._meter_template(
        0, {"address": ADDRESS, "read_way": "items", "wake_up_bytes": 0}
    )
    assert (quirky.read_way, quirky.wake_up_bytes) == ("items", 0)
    [result] = dlt645_tcp.poll_bus(settings(meter), [quirky]).meters
    assert result.ok, result.error
    assert BLOCK_COMBINED not in asked_dis(meter)
    assert all(request.startswith(b"\x68") for request in asked(meter))


def test_it_answers_frames_for_another_address_with_an_error_it_should_not_send(meter):
    """A departure from DL/T645-2007 (a meter stays silent to other addresses): the driver
    sees a refusal from the meter asked, never a value of this meter."""
    [result] = dlt645_tcp.poll_bus(settings(meter), [MeterJob(8, "000000000999")]).meters
    assert not result.ok and result.answered
    assert "meter 000000000999 error reply to 11H: OTHER" in result.error
    assert "forward_total" not in result.values
