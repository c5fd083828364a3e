"""G5: what the device API does with a gateway's messages (the HTTP side is in
``controllers/device_api.py``, the checks that need no database in
``prepaid_core.device_push``).

A push is parsed, checked, stored, then answered: readings go through
``prepaid.meter.reading._ingest``, events to the meters' logs, daily freezes to the daily
records, clocks to the meters; every item left out is kept in *Rejected Readings* (X1).
Commands are fetched (queued ones, and sent ones not answered in time) and acknowledged;
a collector's gateway runner reads its settings (``config``) and reports its polls.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple

from odoo import fields, models
from odoo.tools import SQL

from odoo.addons.prepaid_meter.models.prepaid_meter_reading import MEASURES

from prepaid_core import device_push
from prepaid_core.device_push import (
    CONNECTION_EVENTS,
    MAX_RECORD_ID,
    PUSH_KINDS,
    UNKNOWN_METER,
    DeviceApiError,
    Refusal,
)
from prepaid_core.protocols.dlt645_data import BLOCK, ITEMS

from ..const import ACTIVE_STATES
from .prepaid_meter_model_dlms import DLMS_PROTOCOLS

_logger = logging.getLogger(__name__)

#: what a device may send for a reading, besides its meter address
READING_KEYS = frozenset(
    {"read_at", "forward_total", "reverse_total", "relay_state", "status_word", *MEASURES}
)
#: keys a pushed reading may have (a runner's DL/T645 reading: the way its energy answered)
PUSHED_READING_KEYS = READING_KEYS | {"address", "read_mode"}
#: the ways a DL/T645 meter's energy is read (``prepaid.meter`` ``dlt645_read_mode``)
READ_MODES = frozenset({BLOCK, ITEMS})
#: the readings' source by the kind of gateway that pushes them
PUSH_SOURCES = {"ble_bridge": "ble", "tcp_collector": "poll"}


@dataclass
class CheckedPush:
    """A push once checked: the indexes of the readings in shape, the addresses named, and
    the parsed events, freezes and clocks (``[(index, values)]``)."""

    readings: list
    addresses: set
    events: list
    daily_frozen: list
    clocks: list


class PushStored(NamedTuple):
    """What a push stored: the readings' ingest report (and the push index of each of its
    rows), events logged or skipped as already logged, freezes kept, clocks recorded."""

    ingest: dict
    positions: list
    events: int
    duplicate_events: int
    daily_frozen: int
    clocks: int


class PrepaidGateway(models.Model):
    _inherit = "prepaid.gateway"

    # === PUSH: parse -> check -> store -> answer === #
    def _api_push(self, payload):
        """Readings, events, daily freezes and clocks of one message; returns the answer for
        the device.  Only a malformed message is refused as a whole (not an object, no list,
        too many items); an item that cannot be stored is left out with its reason (in the
        answer's ``rejected`` and in *Rejected Readings*) and the rest is stored."""
        self.ensure_one()
        lists = device_push.push_lists(payload)
        refused = {key: [] for key in PUSH_KINDS}  # {key: [Refusal]}
        checked = self._api_check_push(lists, refused)
        meters = self._api_meters_by_address(checked.addresses)
        source = PUSH_SOURCES.get(self.gateway_type, "push")
        stored = self._api_store_push(lists, checked, meters, source, refused)
        self._api_record_refused(refused, meters, source, lists)
        return self._api_push_answer(stored, refused)

    def _api_check_push(self, lists, refused):
        """Check every item of the push (see ``prepaid_core.device_push``): the readings'
        shape, the events', freezes' and clocks' values.  The addresses collected are those
        of the items kept and of those refused that name one."""
        good, addresses = device_push.check_readings(
            lists["readings"], refused["readings"], PUSHED_READING_KEYS
        )
        now = fields.Datetime.now()
        checked = CheckedPush(
            readings=good,
            addresses=addresses,
            events=device_push.check_items("events", lists["events"], refused["events"], now),
            daily_frozen=device_push.check_items(
                "daily_frozen", lists["daily_frozen"], refused["daily_frozen"], now
            ),
            clocks=device_push.check_items("clocks", lists["clocks"], refused["clocks"], now),
        )
        items = checked.events + checked.daily_frozen + checked.clocks
        addresses.update(values["address"] for _index, values in items)
        addresses.update(refusal.address for refusals in refused.values() for refusal in refusals)
        addresses.discard(None)
        return checked

    def _api_store_push(self, lists, checked, meters, source, refused):
        """Store what the checks kept, of the meters ``meters`` ({address: id}) knows;
        items of other meters go to ``refused``."""
        ingest, positions = self._api_store_readings(
            lists["readings"], checked.readings, meters, source, refused
        )
        logged, duplicates = self._api_log_events(checked.events, meters, refused["events"])
        frozen = self._api_store_frozen(checked.daily_frozen, meters, refused["daily_frozen"])
        clocks = self._api_store_clocks(checked.clocks, meters, refused["clocks"])
        return PushStored(ingest, positions, logged, duplicates, frozen, clocks)

    @staticmethod
    def _api_push_answer(stored, refused):
        """The answer to a push: counts, and every item left out with its reason."""
        return {
            "stored": stored.ingest["stored"],
            "flagged": stored.ingest["flagged"],
            "events": stored.events,
            "duplicate_events": stored.duplicate_events,
            "daily_frozen": stored.daily_frozen,
            "clocks": stored.clocks,
            "rejected": [
                {key: refusal.index, "reason": refusal.reason}
                for key, refusals in refused.items()
                for refusal in refusals
            ]
            + [
                {"readings": stored.positions[item["index"]], "reason": item.get("reason")}
                for item in stored.ingest["rejected"]
            ],
        }

    def _api_meters_by_address(self, addresses):
        """{address: meter id} of this gateway's meters (one query, no records: a push
        names thousands of meters); a unit key names a Modbus meter by its bus and unit
        id (see ``prepaid_meter._device_key``)."""
        self.env["prepaid.meter"].flush_model(
            ["gateway_id", "address", "state", "bus_id", "modbus_unit_id"]
        )
        query = SQL(
            """
            SELECT address, id FROM prepaid_meter
             WHERE gateway_id = %(gateway_id)s AND address = ANY(%(addresses)s::text[])
               AND state != 'removed'
            """,
            gateway_id=self.id,
            addresses=device_push.text_array(addresses),
        )
        meters = dict(self.env.execute_query(query))
        keyed = {}
        for name in addresses:
            if name in meters:
                continue
            if unit := device_push.parse_unit_key(name):
                keyed[name] = (unit[0], unit[1], None, None)
            elif dlms := device_push.parse_dlms_key(name):
                keyed[name] = (dlms[0], None, dlms[1], dlms[2])
        if keyed:
            meters.update(self._api_meters_by_bus_key(keyed))
        return meters

    def _api_meters_by_bus_key(self, keyed):
        """{key: meter id} of this gateway's meters named on their bus rather than by an
        address: a Modbus unit key or a DLMS key (``keyed``: {key: (bus number, unit id,
        logical address, physical address)}, None where the key has none; physical 0: a
        meter behind a TCP wrapper)."""
        self.env["prepaid.gateway.bus"].flush_model(["gateway_id", "number", "protocol"])
        self.env["prepaid.meter"].flush_model(
            ["bus_id", "modbus_unit_id", "dlms_logical_address", "dlms_physical_address"]
        )
        keys = list(keyed)
        columns = list(zip(*(keyed[key] for key in keys), strict=True))
        query = SQL(
            """
            SELECT k.name, m.id
              FROM unnest(%(keys)s::text[], %(buses)s::int[], %(units)s::int[],
                          %(logicals)s::int[], %(physicals)s::int[])
                   AS k(name, bus, unit, logical, physical)
              JOIN prepaid_gateway_bus b ON b.gateway_id = %(gateway_id)s AND b.number = k.bus
              JOIN prepaid_meter m ON m.bus_id = b.id
             WHERE m.gateway_id = %(gateway_id)s AND m.state != 'removed'
               AND CASE WHEN k.unit IS NOT NULL THEN m.modbus_unit_id = k.unit
                        ELSE b.protocol = ANY(%(dlms_protocols)s)
                             AND m.dlms_logical_address = k.logical
                             AND (k.physical = 0 OR m.dlms_physical_address = k.physical)
                   END
            """,
            keys=keys,
            buses=list(columns[0]),
            units=list(columns[1]),
            logicals=list(columns[2]),
            physicals=list(columns[3]),
            dlms_protocols=list(DLMS_PROTOCOLS),
            gateway_id=self.id,
        )
        return dict(self.env.execute_query(query))

    def _api_store_readings(self, readings, good, meters, source, refused):
        """Ingest the readings ``good`` (indexes) of meters in ``meters``; the others are
        refused as unknown.  Returns the ingest's report and the positions of its rows."""
        rows, positions, read_modes = [], [], {}
        meter_of, gateway_id = meters.get, self.id
        unknown = refused["readings"]
        for index in good:
            # the parsed message's rows become the ingest rows (no copy)
            row = readings[index]
            address = row.pop("address")
            meter_id = meter_of(address)
            if not meter_id:
                row["address"] = address
                unknown.append(Refusal(index, UNKNOWN_METER))
                continue
            read_mode = row.pop("read_mode", None)
            if read_mode is not None and not (type(read_mode) is str and read_mode in READ_MODES):
                unknown.append(Refusal(index, "read_mode: neither 'block' nor 'items'", address))
                continue
            if read_mode:
                read_modes[meter_id] = read_mode
            row["meter_id"] = meter_id
            row["source"] = source
            row["gateway_id"] = gateway_id
            rows.append(row)
            positions.append(index)
        self._api_remember_read_modes(read_modes)
        if not rows:
            return {"stored": 0, "flagged": 0, "rejected": []}, positions
        return self.env["prepaid.meter.reading"].sudo()._ingest(rows, source=source), positions

    def _api_remember_read_modes(self, read_modes):
        """G2: the way each DL/T645 meter's energy answered the runner ({meter id: way}),
        kept on the meter as Odoo's own poll keeps it."""
        Meter = self.env["prepaid.meter"].sudo()
        for way in READ_MODES:
            meter_ids = [meter_id for meter_id, mode in read_modes.items() if mode == way]
            if meter_ids:
                Meter.browse(meter_ids)._remember_read_mode(way)

    def _api_log_events(self, events, meters, refused):
        """Log the parsed ``events`` of known meters (those of others go to ``refused``);
        returns (logged, skipped as already logged)."""
        logged = duplicates = 0
        connections = {}
        seen = self._api_seen_events([event for _index, event in events], meters)
        Meter = self.env["prepaid.meter"]
        for index, event in events:
            meter = Meter.browse(meters.get(event["address"]))
            if not meter:
                refused.append(Refusal(index, UNKNOWN_METER))
                continue
            event_id = event["event_id"]
            if event_id and (meter.id, event_id) in seen:
                duplicates += 1  # delivered again: logged already
                continue
            if event_id:
                seen.add((meter.id, event_id))
            if event["event_type"] in CONNECTION_EVENTS:
                connections[meter.id] = CONNECTION_EVENTS[event["event_type"]]
                logged_event = self.env["prepaid.meter.event"]
            else:
                logged_event = self._api_log_event(meter, event)
            if event_id and logged_event:
                logged_event.device_event_id = event_id
            logged += 1
        if connections:
            self._api_connection_states(connections)
        return logged, duplicates

    def _api_log_event(self, meter, event):
        """Log one event (not a connection event) on ``meter``; returns the event logged,
        if any: older news of the relay (a late delivery) does not overwrite newer."""
        event_type, event_at = event["event_type"], event["event_at"]
        if event_type not in ("relay_on", "relay_off"):
            return meter.sudo()._log_event(
                event_type,
                reason=event["reason"],
                event_at=event_at,
                source="device",
                code=event["code"],
            )
        if meter.actual_relay_at and meter.actual_relay_at > event_at:
            return self.env["prepaid.meter.event"]
        changed = meter.sudo()._record_actual_relay(event_type.removeprefix("relay_"), event_at)
        return changed.event_ids.filtered(
            lambda e: (
                e.event_type == event_type and e.event_at == event_at and not e.device_event_id
            )
        )[:1]

    def _api_seen_events(self, events, meters):
        """``{(meter id, event id)}`` of the pushed events already logged (one query)."""
        event_ids = [e["event_id"] for e in events if e.get("event_id")]
        if not event_ids:
            return set()
        self.env["prepaid.meter.event"].flush_model(["meter_id", "device_event_id"])
        query = SQL(
            """
            SELECT meter_id, device_event_id FROM prepaid_meter_event
             WHERE meter_id = ANY(%(meter_ids)s) AND device_event_id = ANY(%(event_ids)s)
            """,
            meter_ids=list(set(meters.values())),
            event_ids=event_ids,
        )
        return {
            (row["meter_id"], row["device_event_id"]) for row in self.env.execute_query_dict(query)
        }

    def _api_connection_states(self, states):
        """``{meter id: 'online' | 'lost'}`` as the broker last saw them (a retained status
        is the current one): only changes are written and logged, so the statuses a
        restarted runner receives again change nothing."""
        Meter = self.env["prepaid.meter"].sudo()
        for state, event_type in (("online", "connection_restored"), ("lost", "connection_lost")):
            ids = [meter_id for meter_id, value in states.items() if value == state]
            changed = Meter.browse(ids).filtered(lambda m, state=state: m.connection_state != state)
            if changed:
                changed.write({"connection_state": state})
                reason = self.env._("device status through the broker")
                changed._log_event(event_type, reason=reason, source="device")

    def _api_store_frozen(self, frozen, meters, refused):
        """G3: daily freezes kept on the daily records, as the scheduled poll does (parsed,
        ``[(index, item)]``); those of unknown meters go to ``refused``.  Returns how many
        were kept."""
        Meter = self.env["prepaid.meter"].sudo()
        Daily = self.env["prepaid.meter.reading.daily"].sudo()
        offset = timedelta(minutes=self.meter_utc_offset or 0)
        stored = 0
        for index, item in frozen:
            meter_id = meters.get(item["address"])
            if not meter_id:
                refused.append(Refusal(index, UNKNOWN_METER))
                continue
            # the meter froze at its local time: the day it closes is the meter's
            local = dict(item, frozen_at=item["frozen_at"] + offset)
            Daily._store_frozen(Meter.browse(meter_id), local, self.meter_utc_offset)
            stored += 1
        return stored

    def _api_store_clocks(self, clocks, meters, refused):
        """G3: clock measurements recorded on the meters (parsed, ``[(index, item)]``);
        those of unknown meters go to ``refused``.  Returns how many meters got one."""
        measured = {}
        for index, item in clocks:
            meter_id = meters.get(item["address"])
            if not meter_id:
                refused.append(Refusal(index, UNKNOWN_METER))
                continue
            measured[meter_id] = item
        if measured:
            self._record_clocks(measured)
        return len(measured)

    def _api_record_refused(self, refused, meters, source, lists):
        """Keep the items refused here in *Rejected Readings* (X1), with their meter when
        their address names one (those refused by the readings' ingest are kept by it),
        except the items of meters another gateway on this gateway's broker stores."""
        Rejection = self.env["prepaid.meter.reading.rejection"].sudo()
        others = self._api_shared_broker_meters(refused, lists)
        for key, refusals in refused.items():
            rejections = [
                {"index": index, "reason": reason, "meter_id": meters.get(address)}
                for index, reason, address in refusals
                if not (reason == UNKNOWN_METER and lists[key][index].get("address") in others)
            ]
            if rejections:
                Rejection._record(rejections, lists[key], source, PUSH_KINDS[key], self)

    def _api_shared_broker_meters(self, refused, lists):
        """The addresses refused as unknown here that are meters of another 4G gateway on
        the same broker: each gateway's runner hears every meter of a broker several
        gateways share, and the other gateway stores them (still refused in the answer)."""
        addresses = {
            lists[key][index].get("address")
            for key, refusals in refused.items()
            for index, reason, _address in refusals
            if reason == UNKNOWN_METER
        } - {None}
        if self.gateway_type != "mqtt" or not addresses:
            return set()
        gateway = self.sudo()
        siblings = gateway.search(
            [
                ("gateway_type", "=", "mqtt"),
                ("id", "!=", gateway.id),
                ("mqtt_host", "=", gateway.mqtt_host),
                ("mqtt_port", "=", gateway.mqtt_port),
            ]
        )
        if not siblings:
            return set()
        others = (
            self.env["prepaid.meter"]
            .sudo()
            .search_fetch(
                [
                    ("gateway_id", "in", siblings.ids),
                    ("address", "in", sorted(addresses)),
                    ("state", "!=", "removed"),
                ],
                ["address"],
            )
        )
        return set(others.mapped("address"))

    # === COMMANDS: fetch and acknowledge === #
    def _api_fetch_commands(self, limit=100):
        """The queued commands of this gateway's meters, marked sent; commands sent earlier
        and not answered within ``command_ack_timeout`` are sent again with the same id
        (the meter answers an id it already ran without running it twice: R8), until their
        attempts are used up."""
        self.ensure_one()
        self._api_prepare_queue()
        unanswered = self._api_fail_unanswered()
        Command = self.env["meter.gateway.command"].sudo()
        commands = Command.search(
            [
                ("gateway_id", "=", self.id),
                "|",
                ("state", "=", "queued"),
                ("id", "in", unanswered.ids),
            ],
            order="id",
            limit=limit,
        )
        commands, after = commands._credits_in_order()
        commands._mark_sent()
        extra = self._api_poll_state() if self.gateway_type == "tcp_collector" else {}
        return {**extra, "commands": [self._api_command(c, after) for c in commands]}

    def _api_prepare_queue(self):
        """Bring the gateway's queue up to date before a fetch: expired and contradicting
        commands out, device settings and a due time sync in.  By gateway, not by a search
        of its meters: a runner fetches every few seconds and a gateway may have tens of
        thousands of meters."""
        Command = self.env["meter.gateway.command"].sudo()
        Command._expire()
        Command._supersede_contradicting(gateway=self)
        Command._issue_device_settings(gateway=self)
        self._queue_due_time_sync()

    def _api_fail_unanswered(self):
        """The commands sent and not answered within ``command_ack_timeout``: those whose
        attempts are used up fail; the others are returned, to be sent again."""
        answer_due = fields.Datetime.now() - timedelta(minutes=self.command_ack_timeout)
        Command = self.env["meter.gateway.command"].sudo()
        unanswered = Command.search(
            [
                ("gateway_id", "=", self.id),
                ("state", "=", "sent"),
                ("sent_at", "<", answer_due),
            ],
            order="id",
        )
        for command in unanswered.filtered(lambda c: c.attempts >= c.max_attempts):
            command._update_state(
                ("sent",),
                "failed",
                self.env._("no answer after %s attempts", command.attempts),
                extra_vals={"last_error": self.env._("no answer")},
            )
        return unanswered.filtered(lambda c: c.state == "sent")

    @staticmethod
    def _api_command(command, after):
        """One command as the device receives it; ``after``: ``{command id: sequence}`` of
        the credit tokens the meter takes after the one of that sequence."""
        return {
            "id": command.id,
            "address": command.meter_id._device_key(),
            "kind": command.kind,
            "payload": {
                **(command.payload or {}),
                **(command.token_secret or {}),
                **({"after_sequence": after[command.id]} if command.id in after else {}),
            },
            "expires_at": fields.Datetime.to_string(command.expires_at),
            "attempt": command.attempts,
        }

    def _api_ack(self, payload):
        """Results of commands: {"acks": [{"id", "address", "success", "reason",
        "relay_state", "delivered", "permanent"}]}: ``delivered: false`` puts the command
        back in the queue without using an attempt, ``permanent: true`` fails it without
        retry.  An answer settles only a command of the meter it comes from (``address``):
        any other is refused for that item and logged, the command left as it is."""
        self.ensure_one()
        acks = device_push.parse_acks(payload)
        # an id beyond PostgreSQL's integers names no command (and must not fail the query)
        ids = [ack.id for ack in acks if 0 < ack.id <= MAX_RECORD_ID]
        Command = self.env["meter.gateway.command"].sudo()
        commands = Command.search([("id", "in", ids), ("gateway_id", "=", self.id)])
        by_id = {command.id: command for command in commands}
        return {"acks": [self._api_settle(by_id.get(ack.id), ack) for ack in acks]}

    def _api_settle(self, command, ack):
        """Settle ``command`` with the device's answer ``ack``; the answer's item."""
        if not command:
            return {"id": ack.id, "state": None, "reason": "unknown command"}
        refusal = self._api_ack_refusal(command, ack.address)
        if refusal:
            return {"id": command.id, "state": None, "reason": refusal}
        if ack.outcome == "requeue":
            command._update_state(
                ("sent",),
                "queued",
                self.env._("not delivered (%s); queued again", ack.reason),
                extra_vals={"attempts": max(command.attempts - 1, 0)},
            )
        elif ack.outcome == "fail":
            command._update_state(
                ACTIVE_STATES,
                "failed",
                self.env._("device: %s", ack.reason),
                extra_vals={"last_error": ack.reason},
            )
        else:
            command._mark_result(ack.success, self.env._("device: %s", ack.reason))
            if ack.relay_state:
                command.meter_id._record_actual_relay(ack.relay_state)
        return {"id": command.id, "state": command.state}

    def _api_ack_refusal(self, command, address):
        """Why an answer naming meter ``address`` may not settle ``command`` (``None``: it
        may); a refusal is logged on the command and in the server log (R12)."""
        if not isinstance(address, str) or not address:
            reason = self.env._("the answer names no meter address")
        elif address not in (command.meter_id.address, command.meter_id._device_key()):
            reason = self.env._("the answer comes from another meter than the command's")
        else:
            return None
        shown = repr(address)[:40]
        _logger.warning(
            "gateway %s: answer to command %s refused (%s; address %s)",
            self.id,
            command.id,
            reason,
            shown,
        )
        command._log_decision(
            self.env._(
                "answer refused: %(reason)s (address %(address)s)", reason=reason, address=shown
            )
        )
        return reason

    # === GATEWAY RUNNER: settings, poll state, poll report === #
    def _api_config(self):
        """What the gateway runner needs to run this gateway (device API ``config``)."""
        self.ensure_one()
        gateway = self.sudo()
        config = {"gateway_id": gateway.id, "gateway_type": gateway.gateway_type}
        if gateway.gateway_type == "mqtt":
            config["mqtt"] = gateway._api_mqtt_config()
        elif gateway.gateway_type == "ble_bridge":
            config["ble_meters"] = gateway._api_ble_config()
        elif gateway.gateway_type == "tcp_collector":
            config["collector"] = gateway._api_collector_config()
        return config

    def _api_mqtt_config(self):
        """G2: the broker of a gateway of 4G meters."""
        return {
            "host": self.mqtt_host or "127.0.0.1",
            "port": self.mqtt_port or 1883,
            "tls": self.mqtt_tls,
            "client_id": self.mqtt_client_id or f"prepaid-gateway-{self.id}",
            "username": self.mqtt_username or None,
            "password": self.mqtt_password or None,
        }

    def _api_ble_config(self):
        """G4: the Bluetooth meters of a bridge, by address and MAC."""
        meters = (
            self.env["prepaid.meter"]
            .sudo()
            .search(
                [
                    ("gateway_id", "=", self.id),
                    ("state", "!=", "removed"),
                    ("ble_mac", "!=", False),
                ]
            )
        )
        return [{"address": m.address, "mac": m.ble_mac} for m in meters]

    def _api_collector_config(self):
        """G3: what a gateway runner needs to hold this collector's buses and poll them:
        link settings, schedule and the meters of every bus with a driver, in poll order."""
        self.ensure_one()
        buses, meters = self._polled_buses_and_meters()
        return {
            "host": self.host or "127.0.0.1",
            "poll_interval": self.poll_interval or 30,
            "timeout": self.poll_timeout,
            "retries": self.poll_retries,
            "lost_after_failures": self.lost_after_failures,
            "password": self.meter_password or "02000000",
            "operator": self.operator_code or "00000000",
            "utc_offset_minutes": self.meter_utc_offset,
            "buses": [
                {
                    "number": bus.number,
                    "port": bus.port,
                    # a serial bus: a device of the runner's machine, at the bus's line
                    "url": (bus.device or "").strip() if bus.connection == "serial" else "",
                    "baudrate": int(bus.baud_rate or 0),
                    "parity": bus.parity or "N",
                    "stopbits": int(bus.stop_bits or 1),
                    "protocol": bus.protocol,
                    "meters": [
                        self._api_collector_meter(bus, meter)
                        for meter in meters
                        if meter.bus_id == bus
                    ],
                }
                for bus in buses
            ],
        }

    @staticmethod
    def _api_collector_meter(bus, meter):
        """One meter of the collector config: its address (the runner keys meters and
        readings by it: a Modbus meter known by its unit id alone is given its unit key),
        Modbus unit id and register map and, on a DL/T645 bus, how Odoo's own poll reads
        it (G2/M2: the way that worked last, the register that bills, its own balance,
        its model's read way and wake-up bytes)."""
        config = {
            "address": meter._device_key(),
            "unit_id": meter.modbus_unit_id,
            "register_map": meter.model_id._modbus_register_map_data(),
        }
        if bus.driver == "dlt645_tcp":
            config.update(bus._dlt645_reading_values(meter))
        elif bus.driver == "dlms":
            config.update(bus._dlms_collector_values(meter))
        return config

    def _api_poll_state(self):
        """For a collector's runner, with the commands: is a poll due (its schedule, or a
        reading asked for now), and is a scheduled poll of Odoo still running (wait); when
        a poll is due, the meters it also reads as Odoo's scheduled poll would."""
        now = fields.Datetime.now()
        state = {
            "poll_due": not self.next_poll_at or self.next_poll_at <= now,
            "busy": self._poll_running(),
        }
        if state["poll_due"]:
            state.update(self._api_poll_reads_due())
        return state

    def _api_poll_reads_due(self):
        """G3: the addresses of the DL/T645 meters whose next poll also reads their last
        daily freeze (DL/T645-2007 meters whose day lacks it: ``daily_frozen_due``) or their
        clock (2007 and 1997 meters due for a check: ``clock_due``), the same meters Odoo's
        scheduled poll would read."""
        self.ensure_one()
        buses = self.bus_ids.filtered(lambda b: b.driver == "dlt645_tcp" and b.port)
        meters = self.env["prepaid.meter"].search(
            [("bus_id", "in", buses.ids), ("state", "=", "in_service"), ("address", "!=", False)]
        )
        Daily = self.env["prepaid.meter.reading.daily"]
        frozen = Daily._meters_missing_frozen(
            meters.filtered(lambda m: m.bus_id.protocol == "dlt645_2007"), Daily._frozen_day(self)
        )
        clock = self._meters_clock_due(meters)
        return {
            "daily_frozen_due": [m.address for m in meters if m.id in frozen],
            "clock_due": [m.address for m in meters if m.id in clock],
        }

    def _api_runner_report(self, payload):
        """G3: the outcome of one poll of the gateway runner (its readings came through
        ``push``, its command answers through ``commands/ack``): meters that answered or
        not, whether the collector was reached; the next poll is due one interval after the
        start of this one."""
        self.ensure_one()
        if self.gateway_type != "tcp_collector":
            raise DeviceApiError("bad_request", "only a collector's runner reports polls")
        report = device_push.parse_poll_report(payload, fields.Datetime.now())
        meters = self._api_meters_by_address(set(report.answered) | report.failed.keys())
        failed = report.failed.items()
        self._record_poll(
            [meters[address] for address in report.answered if address in meters],
            {meters[address]: error for address, error in failed if address in meters},
            connected=report.connected,
            errors=report.errors,
            seconds=report.seconds,
            stored=report.stored,
        )
        self.write(
            {
                "last_poll_at": report.started_at,
                "next_poll_at": report.started_at + timedelta(minutes=self.poll_interval or 30),
            }
        )
        return {"next_poll_at": fields.Datetime.to_string(self.next_poll_at)}
