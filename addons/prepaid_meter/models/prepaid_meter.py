import base64
import re
import uuid
from datetime import timedelta
from decimal import Decimal

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from ..const import (
    BILLING_MODES,
    DEFAULT_LOST_AFTER_MINUTES,
    RELAY_STATES,
)
from .prepaid_gateway_bus import MAX_METERS_PER_BUS
from .prepaid_meter_model import TRANSFORMER_PAIRS

ADDRESS_RE = re.compile(r"^\d{12}$")


class PrepaidMeter(models.Model):
    """M3: an electricity or water meter installed in a unit.

    The relay has two states: the *desired* one, decided by billing (alarms, credit) or by a
    manager, and the *actual* one, reported by the device.  meter_gateway makes the second
    follow the first; nothing else talks to devices.
    """

    _name = "prepaid.meter"
    _description = "Prepaid Meter"
    _inherit = ["mail.thread", "mail.activity.mixin", "portal.mixin", "prepaid.transformer.ratios"]
    _inherits = {"prepaid.meter.latest": "latest_id"}
    _order = "site_id, building_id, unit_id, name"
    _check_company_auto = True

    # === IDENTITY === #
    name = fields.Char(required=True, tracking=True, help="Name shown to managers and tenants.")
    serial = fields.Char(string="Serial Number", tracking=True)
    address = fields.Char(
        string="Communication Address",
        tracking=True,
        help="12-digit DL/T645 / device address, unique on its gateway bus.",
    )
    model_id = fields.Many2one("prepaid.meter.model", required=True, tracking=True)
    utility = fields.Selection(related="model_id.utility", store=True)
    uom_name = fields.Char(related="model_id.uom_name")
    protocol = fields.Selection(related="model_id.protocol")
    state = fields.Selection(
        [("draft", "Draft"), ("in_service", "In Service"), ("removed", "Removed")],
        default="draft",
        required=True,
        tracking=True,
        copy=False,
    )
    active = fields.Boolean(default=True)

    # === WHERE === #
    unit_id = fields.Many2one("prepaid.unit", index=True, tracking=True, check_company=True)
    building_id = fields.Many2one(related="unit_id.building_id", store=True, index=True)
    site_id = fields.Many2one(related="unit_id.site_id", store=True, index=True)
    company_id = fields.Many2one(
        "res.company",
        compute="_compute_company_id",
        store=True,
        readonly=False,
        required=True,
        index=True,
        precompute=True,
    )
    install_location = fields.Char(help="Where the meter hangs, e.g. 'Cabinet 2, left'.")
    gateway_id = fields.Many2one("prepaid.gateway", index=True, tracking=True, check_company=True)
    bus_id = fields.Many2one(
        "prepaid.gateway.bus",
        index=True,
        domain="[('gateway_id', '=', gateway_id)]",
        check_company=True,
    )

    # === METROLOGY === #
    # CT and PT as nameplate pairs, their ratios (prepaid.transformer.ratios): readings are
    # stored on the primary side (docs/readings_store.md)
    ct_ratio = fields.Float(tracking=True)
    pt_ratio = fields.Float(tracking=True)
    multiplier = fields.Float(
        compute="_compute_multiplier",
        store=True,
        digits=(16, 4),
        help="CT ratio × PT ratio: energy registers and power are multiplied by it.",
    )

    billing_mode = fields.Selection(
        BILLING_MODES,
        compute="_compute_billing_mode",
        store=True,
        readonly=False,
        precompute=True,
        required=True,
        tracking=True,
        help="Server Billing: the server deducts and cuts supply by relay command. "
        "Meter Billing: the meter deducts itself and every recharge reaches it as a token.",
    )
    credit_ids = fields.One2many("prepaid.meter.credit", "meter_id", string="Meter Credits")
    credit_count = fields.Integer(compute="_compute_credit_count")

    # === SUPPLY === #
    desired_relay_state = fields.Selection(
        RELAY_STATES, default="on", required=True, tracking=True, copy=False
    )
    desired_relay_reason = fields.Char(tracking=True, copy=False)
    desired_relay_changed_at = fields.Datetime(copy=False, readonly=True)
    protect_mode = fields.Boolean(
        tracking=True, help="Protected meters are never cut, whatever the balance."
    )
    # === SETTINGS HELD BY THE DEVICE: the billing add-on decides them (_device_settings),
    # the gateway issues them to meters that price locally === #
    device_settings_at = fields.Datetime(
        string="Settings Changed",
        readonly=True,
        copy=False,
        help="When the prices, alarm thresholds or overload limit this meter must hold last "
        "changed, or an operator asked to issue them again.",
    )

    # === LATEST STATE (what the device reported: delegated to prepaid.meter.latest) === #
    latest_id = fields.Many2one(
        "prepaid.meter.latest",
        required=True,
        ondelete="cascade",
        index=True,
        copy=False,
        string="Latest State",
        help="Newest reading, baseline, contact and relay state, kept in a narrow table that "
        "every reading rewrites (see prepaid.meter.latest).",
    )
    status = fields.Selection(
        selection="_selection_status",
        compute="_compute_status",
        store=True,
        index=True,
        help="What the meter list colours: the most urgent condition of the meter.",
    )

    # === TENANCY === #
    current_tenancy_id = fields.Many2one(
        "prepaid.tenancy", compute="_compute_current_tenancy", string="Tenancy"
    )
    tenant_id = fields.Many2one(
        "res.partner", compute="_compute_current_tenancy", search="_search_tenant_id"
    )
    replaced_by_id = fields.Many2one("prepaid.meter", readonly=True, copy=False)
    replaces_id = fields.Many2one("prepaid.meter", readonly=True, copy=False)

    # === RELATED RECORDS === #
    reading_count = fields.Integer(compute="_compute_reading_count")
    event_ids = fields.One2many("prepaid.meter.event", "meter_id", string="Events")
    qr_url = fields.Char(
        compute="_compute_qr_url",
        string="QR Link",
        help="What the meter's QR code opens: its page for the tenant.",
    )
    qr_image = fields.Binary(compute="_compute_qr_url", string="QR Code")

    _address_bus_uniq = models.UniqueIndex(
        "(gateway_id, COALESCE(bus_id, 0), address) "
        "WHERE address IS NOT NULL AND gateway_id IS NOT NULL AND state != 'removed'",
        "A communication address must be unique on its gateway bus.",
    )
    # a push names its meters by gateway and address: a lookup by both reads only their
    # entries (the unique index, bus second, would read every meter of the gateway)
    _gateway_address_idx = models.Index(
        "(gateway_id, address) "
        "WHERE address IS NOT NULL AND gateway_id IS NOT NULL AND state != 'removed'"
    )
    _serial_model_uniq = models.UniqueIndex(
        "(model_id, serial) WHERE serial IS NOT NULL",
        "A serial number must be unique for its meter model.",
    )
    _status_company_idx = models.Index("(company_id, status)")
    # what the bulk ingest of readings needs of each meter, read from the index alone
    # (``prepaid.meter.reading._load_meter_states``): meters are written seldom, read on
    # every reading
    _ingest_idx = models.Index(
        "(id) INCLUDE (company_id, multiplier, ct_ratio, pt_ratio, model_id, latest_id, state, "
        "desired_relay_state)"
    )

    # === COMPUTES === #
    @api.model
    def _selection_status(self):
        """Most urgent first; prepaid_billing inserts its alarm levels.  The labels are
        translated here: Odoo translates only the labels of a fixed selection."""
        labels = {
            "removed": self.env._("Removed"),
            "draft": self.env._("Not Installed"),
            "lost": self.env._("Lost Connection"),
            "off": self.env._("Supply Off"),
            "protected": self.env._("Protected"),
            "normal": self.env._("Normal"),
        }
        return list(labels.items())

    @api.depends("unit_id.company_id")
    def _compute_company_id(self):
        for meter in self:
            if meter.unit_id:
                meter.company_id = meter.unit_id.company_id
            elif not meter.company_id:
                meter.company_id = self.env.company

    @api.depends("model_id")
    def _compute_billing_mode(self):
        for meter in self:
            meter.billing_mode = meter.model_id.billing_mode or "server"

    def _compute_credit_count(self):
        counts = dict(
            self.env["prepaid.meter.credit"]._read_group(
                [("meter_id", "in", self.ids)], ["meter_id"], ["__count"]
            )
        )
        for meter in self:
            meter.credit_count = counts.get(meter, 0)

    @api.depends("ct_ratio", "pt_ratio")
    def _compute_multiplier(self):
        for meter in self:
            meter.multiplier = (meter.ct_ratio or 1.0) * (meter.pt_ratio or 1.0)

    @api.depends("state", "connection_state", "protect_mode", "desired_relay_state")
    def _compute_status(self):
        for meter in self:
            meter.status = meter._get_status()

    def _get_status(self):
        """Status of one meter; override and call super() to add conditions."""
        self.ensure_one()
        if self.state == "removed":
            return "removed"
        if self.state == "draft":
            return "draft"
        if self.connection_state == "lost":
            return "lost"
        if self.desired_relay_state == "off":
            return "off"
        if self.protect_mode:
            return "protected"
        return "normal"

    @api.depends("unit_id.tenancy_ids.state")
    def _compute_current_tenancy(self):
        for meter in self:
            tenancy = meter.unit_id.current_tenancy_id if meter.state != "removed" else False
            meter.current_tenancy_id = tenancy
            meter.tenant_id = tenancy.partner_id if tenancy else False

    def _search_tenant_id(self, operator, value):
        return [("unit_id", "any", [("tenant_id", operator, value)]), ("state", "!=", "removed")]

    def _compute_reading_count(self):
        counts = dict(
            self.env["prepaid.meter.reading"]._read_group(
                [("meter_id", "in", self.ids)], ["meter_id"], ["__count"]
            )
        )
        for meter in self:
            meter.reading_count = counts.get(meter, 0)

    def _compute_access_url(self):  # pylint: disable=missing-return
        super()._compute_access_url()
        for meter in self:
            meter.access_url = f"/my/meters/{meter.id}"

    @api.depends("access_token")
    def _compute_qr_url(self):
        report = self.env["ir.actions.report"]
        for meter in self:
            if not meter.id:
                meter.qr_url = meter.qr_image = False
                continue
            meter.qr_url = meter.get_base_url() + meter.sudo().get_portal_url()
            meter.qr_image = base64.b64encode(
                report.barcode("QR", meter.qr_url, width=240, height=240)
            )

    # === CONSTRAINTS === #
    @api.constrains("address")
    def _check_address(self):
        for meter in self:
            if meter.address and not ADDRESS_RE.match(meter.address):
                raise ValidationError(
                    self.env._(
                        "The communication address of %(meter)s must be 12 digits "
                        "(got %(address)r).",
                        meter=meter.display_name,
                        address=meter.address,
                    )
                )

    @api.constrains("bus_id", "gateway_id", "state")
    def _check_bus(self):
        for bus in self.bus_id:
            count = self.search_count([("bus_id", "=", bus.id), ("state", "!=", "removed")])
            if count > MAX_METERS_PER_BUS:
                raise ValidationError(
                    self.env._(
                        "Bus %(bus)s has %(count)s meters; an RS-485 bus carries at most %(max)s.",
                        bus=bus.name,
                        count=count,
                        max=MAX_METERS_PER_BUS,
                    )
                )
        for meter in self:
            if meter.bus_id and meter.bus_id.gateway_id != meter.gateway_id:
                raise ValidationError(
                    self.env._(
                        "Bus %(bus)s does not belong to gateway %(gateway)s.",
                        bus=meter.bus_id.name,
                        gateway=meter.gateway_id.name,
                    )
                )

    # === CRUD === #
    @api.onchange("model_id")
    def _onchange_model_id(self):
        if self.model_id:
            self.update(self.model_id._transformer_values())

    @api.model_create_multi
    def create(self, vals_list):
        """A new meter takes its model's CT and PT, unless given (as pairs or ratios)."""
        for vals in vals_list:
            if vals.get("model_id"):
                defaults = self.env["prepaid.meter.model"].browse(vals["model_id"])
                for ratio, pair in TRANSFORMER_PAIRS.items():
                    if ratio not in vals and not set(pair) & set(vals):
                        vals.update({name: defaults[name] for name in pair})
        meters = super().create(vals_list)
        for meter in meters:
            meter._portal_ensure_token()
        return meters

    def write(self, vals):
        """A meter moved to another unit, or removed (replaced), changes hands: its QR and
        share links are renewed."""
        moved = self.browse()
        if "unit_id" in vals:
            moved |= self.filtered(lambda m: m.unit_id.id != vals["unit_id"])
        if vals.get("state") == "removed":
            moved |= self.filtered(lambda m: m.state != "removed")
        res = super().write(vals)
        if moved:
            moved._rotate_access_token(self.env._("The meter changed hands."))
        return res

    def unlink(self):
        latest = self.latest_id
        result = super().unlink()
        latest.unlink()
        return result

    @api.ondelete(at_uninstall=False)
    def _unlink_except_with_readings(self):
        if self.env["prepaid.meter.reading"].search_count([("meter_id", "in", self.ids)], limit=1):
            raise UserError(
                self.env._("A meter with readings cannot be deleted: mark it as removed instead.")
            )

    # === ACTIONS === #
    def action_put_in_service(self):
        for meter in self:
            if meter.state == "removed":
                raise UserError(
                    self.env._("%(meter)s was removed; it cannot return.", meter=meter.name)
                )
            if not meter.unit_id:
                raise UserError(self.env._("Install %(meter)s in a unit first.", meter=meter.name))
        self.write({"state": "in_service"})

    def action_remove(self):
        self.write({"state": "removed"})

    def action_set_draft(self):
        self.filtered(lambda m: m.state == "in_service").write({"state": "draft"})

    def action_view_readings(self):
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_meter.prepaid_meter_reading_action"
        )
        action["domain"] = [("meter_id", "in", self.ids)]
        action["context"] = {"default_meter_id": self.id} if len(self) == 1 else {}
        return action

    def action_view_events(self):
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_meter.prepaid_meter_event_action"
        )
        action["domain"] = [("meter_id", "in", self.ids)]
        return action

    def _meter_credit_not_carried(self):
        """B13: money sold for this meter that no token carried yet (a token format that
        carries energy rounds down; the gateway add-on keeps the rest for the next token),
        as a Decimal."""
        self.ensure_one()
        return Decimal(0)

    def action_view_credits(self):
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_meter.prepaid_meter_credit_action"
        )
        action["domain"] = [("meter_id", "in", self.ids)]
        action["context"] = {"default_meter_id": self.id} if len(self) == 1 else {}
        return action

    def action_print_label(self):
        return self.env.ref("prepaid_meter.action_report_prepaid_meter_label").report_action(self)

    def action_share(self):
        """T7: open Odoo's share wizard on the meter's portal link."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "portal.share",
            "view_mode": "form",
            "target": "new",
            "context": {"active_model": self._name, "active_id": self.id},
        }

    def action_reset_access_token(self):
        """A manager renews the QR and share links: every link given so far opens nothing."""
        self.check_access("write")
        if not self.env.user.has_group("prepaid_meter.group_prepaid_manager"):
            raise AccessError(self.env._("Only a manager resets the links of a meter."))
        self._rotate_access_token(self.env._("Reset by %(user)s.", user=self.env.user.name))
        return True

    # === BUSINESS METHODS === #
    def _rotate_access_token(self, reason):
        """Give each meter a new access token (the QR code and share links carry it): the
        old links then answer exactly like a link that never existed, so a former tenant's
        link shows nothing of the next one.  Logged in the chatter with ``reason``."""
        for meter in self.sudo():
            meter.access_token = str(uuid.uuid4())
            meter.message_post(
                body=self.env._(
                    "QR code and share links renewed (the old ones no longer open the meter): "
                    "%(reason)s",
                    reason=reason,
                )
            )

    def _set_desired_relay(self, state, reason):
        """Ask for supply on or off.  Billing and managers call this; meter_gateway makes the
        device follow.  Records who and why as an event; a no-op for meters already there."""
        to_change = self.filtered(
            lambda m: m.desired_relay_state != state or m.desired_relay_reason != reason
        )
        if not to_change:
            return to_change
        changed_state = to_change.filtered(lambda m: m.desired_relay_state != state)
        to_change.write(
            {
                "desired_relay_state": state,
                "desired_relay_reason": reason,
                "desired_relay_changed_at": fields.Datetime.now(),
            }
        )
        changed_state._log_event(f"desired_{state}", reason=reason)
        return to_change

    def _record_actual_relay(self, state, at=None):
        """The device reported its relay: record it, with an event when it changed."""
        at = at or fields.Datetime.now()
        changed = self.filtered(lambda m: m.actual_relay_state != state)
        self.write({"actual_relay_state": state, "actual_relay_at": at})
        changed._log_event(f"relay_{state}", event_at=at, source="device")
        return changed

    def _device_settings(self, at=None):
        """What this meter must hold at ``at`` (now) when it prices locally: ``alarm1``,
        ``alarm2``, ``overload_kw`` and ``tariff`` (prices per band and step, ladder limits,
        time-of-use periods), amounts as text; ``None`` for what nothing decides.  The
        billing add-on gives it (and sets ``device_settings_at`` when it changes); the
        gateway turns it into price and threshold commands."""
        self.ensure_one()
        return {"alarm1": None, "alarm2": None, "overload_kw": None, "tariff": None}

    def _request_reading(self):
        """Ask for a reading of these meters now (a tenant's "read now", T3).  prepaid_meter
        talks to no device: meter_gateway implements it.  Returns the meters whose gateway
        was asked."""
        return self.browse()

    def _log_event(self, event_type, reason=None, event_at=None, source=None, code=None):
        if not self:
            return self.env["prepaid.meter.event"]
        user = self.env.user
        return (
            self.env["prepaid.meter.event"]
            .sudo()
            .create(
                [
                    {
                        "meter_id": meter.id,
                        "event_type": event_type,
                        "reason": reason,
                        "code": code,
                        "event_at": event_at or fields.Datetime.now(),
                        "user_id": user.id if source != "device" else False,
                        "source": source or ("system" if user._is_superuser() else "operator"),
                    }
                    for meter in self
                ]
            )
        )

    @api.model
    def _lost_after(self):
        param = self.env["ir.config_parameter"].sudo().get_param("prepaid_meter.lost_after_minutes")
        return timedelta(minutes=int(param or DEFAULT_LOST_AFTER_MINUTES))

    @api.model
    def _cron_update_connection_state(self):
        """Meters (and gateways) silent for too long are marked lost, with an event."""
        limit = fields.Datetime.now() - self._lost_after()
        lost = self.search(
            [
                ("state", "=", "in_service"),
                ("connection_state", "=", "online"),
                ("last_contact_at", "<", limit),
            ]
        )
        lost.write({"connection_state": "lost"})
        lost._log_event("connection_lost", reason=self.env._("No contact since %s", limit))
        gateways = self.env["prepaid.gateway"].search(
            [("connection_state", "=", "online"), ("last_contact_at", "<", limit)]
        )
        gateways.write({"connection_state": "lost"})
        return lost

    # === DEMO === #
    _DEMO_FIRST_NAMES = (
        "Amira", "Bruno", "Carla", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines",
        "Jonas", "Kemal", "Lena", "Marco", "Nadia", "Omar", "Priya", "Quentin", "Rania",
        "Stefan", "Tara", "Ugo", "Vera", "Wei", "Yara", "Zeno",
    )  # fmt: skip
    _DEMO_LAST_NAMES = (
        "Adler", "Baptiste", "Costa", "Duarte", "Eriksen", "Fischer", "Gomez", "Haddad",
        "Ivanova", "Jensen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor",
        "Petrov", "Rossi", "Silva", "Tanaka", "Varga",
    )  # fmt: skip

    @api.model
    def _demo_populate(self, building_ids, unit_type, feeds, first_serial=1):
        """Demo data (X3): meters on the given collectors' buses and 4G gateways, each
        electricity meter in a unit of its own with a tenant and an open tenancy (units go
        round ``building_ids``, ten a floor); water meters join the units made so far, one
        each (a household with two meters).

        ``feeds``: ``[(gateway id, bus id or False, meter model id, first address, count,
        CT ratio)]``; addresses count up from the first one, as the simulator numbers its
        meters (``00CCCBBBMMMM`` on collector buses, ``9NNNNNNNNNNN`` over 4G)."""
        buildings = self.env["prepaid.building"].browse(building_ids)
        Unit, Floor = self.env["prepaid.unit"], self.env["prepaid.floor"]
        units, water_units = Unit, []
        serial = first_serial
        meter_vals = []
        for gateway_id, bus_id, model_id, first_address, count, ct_ratio in feeds:
            model = self.env["prepaid.meter.model"].browse(model_id)
            for offset in range(count):
                address = f"{int(first_address) + offset:012d}"
                if model.utility == "water":
                    if not water_units:
                        water_units = list(units)
                    unit = water_units.pop(0)
                else:
                    building = buildings[len(units) % len(buildings)]
                    number = len(units.filtered(lambda u, b=building: u.building_id == b))
                    level = number // 10 + 1
                    floor = Floor.search(
                        [("building_id", "=", building.id), ("sequence", "=", level)], limit=1
                    ) or Floor.create(
                        {"name": f"Level {level}", "building_id": building.id, "sequence": level}
                    )
                    code = "".join(w[0] for w in building.name.split()[:2]).upper()
                    unit = Unit.create(
                        {
                            "name": f"{code}-{level}{number % 10 + 1:02d}",
                            "unit_type": unit_type,
                            "building_id": building.id,
                            "floor_id": floor.id,
                            "area": 28 + (serial * 7) % 90,
                        }
                    )
                    units |= unit
                meter_vals.append(
                    {
                        "name": f"{unit.name} {'Water' if model.utility == 'water' else 'Power'}",
                        "serial": f"SN{2026000 + serial}",
                        "address": address,
                        "model_id": model.id,
                        "unit_id": unit.id,
                        "gateway_id": gateway_id,
                        "bus_id": bus_id or False,
                        "ct_ratio": ct_ratio or 1.0,
                        "state": "in_service",
                    }
                )
                serial += 1
        meters = self.create(meter_vals)
        firsts, lasts = self._DEMO_FIRST_NAMES, self._DEMO_LAST_NAMES
        today = fields.Date.context_today(self)
        partners = self.env["res.partner"].create(
            [
                {
                    "name": f"{firsts[(i * 7) % len(firsts)]} {lasts[(i * 11) % len(lasts)]}",
                    "phone": f"+1 555 {2000 + first_serial + i}",
                    "email": f"tenant{first_serial + i}@example.com",
                    "company_id": unit.company_id.id,
                }
                for i, unit in enumerate(units)
            ]
        )
        self.env["prepaid.tenancy"].create(
            [
                {
                    "partner_id": partner.id,
                    "unit_id": unit.id,
                    "date_start": today - timedelta(days=30 + (i * 37) % 600),
                    "state": "open",
                }
                for i, (unit, partner) in enumerate(zip(units, partners, strict=True))
            ]
        )
        return meters

    @api.model
    def _demo_generate_readings(self, days=3):
        """Demo data: ``days`` of 30-minute readings for every meter in service, through the
        same bulk path gateways use."""
        import random  # noqa: PLC0415 -- demo only

        meters = self.search([("state", "=", "in_service")])
        end = fields.Datetime.now().replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(days=days)
        steps = days * 48
        rows = []
        for meter in meters:
            rnd = random.Random(meter.id)
            total = (
                rnd.uniform(100, 5000) if meter.utility == "electricity" else rnd.uniform(10, 300)
            )
            for step in range(steps + 1):
                at = start + timedelta(minutes=30 * step)
                hour = at.hour
                if meter.utility == "water":
                    total += rnd.uniform(0.0, 0.04) * (2 if 6 <= hour <= 9 else 1)
                else:
                    base = 1.6 if meter.unit_id.unit_type in ("shop", "office") else 0.4
                    busy = 1.8 if 9 <= hour <= 20 else 0.3
                    total += rnd.uniform(0.2, 1.0) * base * busy / (meter.multiplier or 1)
                rows.append(
                    {
                        "meter_id": meter.id,
                        "read_at": at,
                        "forward_total": round(total, 2),
                        "voltage": round(rnd.uniform(215, 232), 1),
                        # (meter side: stored times the CT ratio, as the total)
                        "power": round(rnd.uniform(0.1, 4.0) / (meter.multiplier or 1), 4),
                        "relay_state": "on",
                        "source": "poll",
                    }
                )
        return self.env["prepaid.meter.reading"]._ingest(rows)
