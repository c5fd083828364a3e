"""B13/G6: how a meter takes its tokens: format (own or STS), channel, STS parameters.

The format and the channel come from the meter's model and can be changed per meter. An
STS meter's decoder key derives (DKGA02) from the company's STS vending key and the
meter's parameters; its token identifiers and the money its tokens could not carry (an STS
credit is energy in tenths of a unit, rounded down) are kept here, taken under the meter's
row lock.
"""

from decimal import Decimal

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL

from odoo.addons.prepaid_meter.const import CREDIT_CHANNELS
from odoo.addons.prepaid_meter.error_texts import error_text

from prepaid_core import sts, tokens

from ..const import HANDED_STATE, STS_BASE_DATES, TOKEN_FORMATS

BASE_DATES = {"1993": sts.BASE_DATE, "2014": sts.BASE_DATE_2014}


class PrepaidMeter(models.Model):
    _inherit = "prepaid.meter"

    token_format = fields.Selection(
        TOKEN_FORMATS,
        compute="_compute_token_settings",
        store=True,
        readonly=False,
        precompute=True,
        help="How this meter's tokens are made (from its model; can be changed per meter).",
    )
    credit_channel = fields.Selection(
        CREDIT_CHANNELS,
        compute="_compute_token_settings",
        store=True,
        readonly=False,
        precompute=True,
        help="How a credit token reaches this meter (from its model; can be changed per meter).",
    )
    sts_meter_number = fields.Char(
        string="STS Meter Number",
        help="The meter's PAN as DKGA02 takes it: 6-digit IIN, 11-digit meter number and "
        "check digit (18 digits, or the first 17).",
    )
    sts_supply_group_code = fields.Char(string="STS Supply Group Code", size=6)
    sts_tariff_index = fields.Char(string="STS Tariff Index", size=2, default="01")
    sts_key_revision = fields.Integer(string="STS Key Revision", default=1)
    sts_key_type = fields.Integer(string="STS Key Type", default=2)
    sts_base_date = fields.Selection(
        STS_BASE_DATES,
        string="STS Base Date",
        default="2014",
        help="Base date of the meter's token identifiers: 1993 identifiers ran out in "
        "November 2024, so meters in service take 2014.",
    )
    sts_last_tid = fields.Integer(
        string="Last STS Token Id",
        readonly=True,
        copy=False,
        help="Token identifier of the last STS token issued for the meter: the next one is "
        "greater, so two tokens of the same minute are distinct and ordered.",
    )
    # 8 decimals: exact for money of 4 decimals and prices of up to 6 (price / 10: 7)
    credit_not_carried = fields.Float(
        digits=(16, 8),
        readonly=True,
        copy=False,
        help="Money sold for the meter that no STS token carried (a token carries whole "
        "tenths of a unit at the meter's price): added to the next token.",
    )

    @api.depends("model_id")
    def _compute_token_settings(self):
        for meter in self:
            meter.token_format = meter.model_id.token_format or "own"
            meter.credit_channel = meter.model_id.credit_channel or "device"

    # === TOKENS === #

    def _lock_for_tokens(self):
        """R10: take the meter's row lock until the transaction ends, so the tokens of one
        meter are numbered one at a time; the cached token fields are read again."""
        self.ensure_one()
        self.env.execute_query(
            SQL("SELECT id FROM prepaid_meter WHERE id = %s FOR UPDATE", self.id)
        )
        self.invalidate_recordset(["sts_last_tid", "credit_not_carried", "token_sequence"])

    def _meter_credit_not_carried(self):
        self.ensure_one()
        return Decimal(f"{self.sudo().credit_not_carried:.8f}")

    def _sts_base_date(self):
        self.ensure_one()
        return BASE_DATES[self.sts_base_date or "2014"]

    def _sts_decoder_key(self, key_revision=None, tariff_index=None):
        """The meter's STS decoder key (DKGA02), or with another key revision / tariff
        index (a key change); ``UserError`` when a parameter is missing or wrong."""
        self.ensure_one()
        meter = self.sudo()
        vending_key = meter.company_id._prepaid_sts_vending_key()
        try:
            return sts.decoder_key_dkga02(
                vending_key,
                meter.sts_supply_group_code or "",
                tariff_index or meter.sts_tariff_index or "",
                meter.sts_key_revision if key_revision is None else key_revision,
                meter.sts_meter_number or "",
                meter.sts_key_type,
            )
        except sts.StsError as exc:
            raise UserError(
                self.env._(
                    "Meter %(meter)s: %(error)s",
                    meter=meter.display_name,
                    error=error_text(self.env, exc),
                )
            ) from exc

    def _sts_take_tid(self):
        """The next token identifier of the meter (call under ``_lock_for_tokens``), and
        the moment it names, for ``sts.encode_*``."""
        self.ensure_one()
        base = self._sts_base_date()
        try:
            tid = sts.next_tid(fields.Datetime.now(), self.sudo().sts_last_tid, base)
        except sts.StsError as exc:
            raise UserError(error_text(self.env, exc)) from exc
        self.sudo().sts_last_tid = tid
        return tid, sts.tid_moment(tid, base)

    def _sts_unit_price(self):
        """The single price per unit the meter deducts at (its device settings: the
        billing add-on's tariff in force), or ``None`` when none or more than one."""
        self.ensure_one()
        tariff = (self.sudo()._device_settings() or {}).get("tariff") or {}
        prices = [step for steps in (tariff.get("prices") or {}).values() for step in steps]
        if len(prices) != 1 or tariff.get("periods"):
            return None
        return Decimal(str(prices[0]))

    def _sts_credit_subclass(self):
        self.ensure_one()
        if self.model_id.utility == "water":
            return sts.CreditSubclass.WATER
        return sts.CreditSubclass.ELECTRICITY

    # === MANAGEMENT TOKENS === #

    def _issue_management_tokens(self, action, reason, watts=0, key_revision=None, tariff=None):
        """Managers' management tokens for this meter (``action`` of MANAGEMENT_TOKENS; a
        key change gives two tokens and moves the meter to the new key revision and tariff
        index), as commands handed over: the manager enters them on the meter."""
        self.ensure_one()
        if not self.env.user.has_group("prepaid_meter.group_prepaid_manager"):
            raise AccessError(self.env._("Only managers issue management tokens."))
        meter = self.sudo()
        meter._lock_for_tokens()
        if meter.token_format == "sts":
            made = meter._sts_management_tokens(action, watts, key_revision, tariff)
        else:
            made = meter._own_management_tokens(action)
        Command = self.env["meter.gateway.command"].sudo()
        log = Command._log_line(HANDED_STATE, reason)
        return Command.create(
            [
                {
                    "meter_id": meter.id,
                    "kind": "management",
                    "payload": payload,
                    "token_secret": secret,
                    "origin": "manual",
                    "reason": reason,
                    "state": HANDED_STATE,
                    "reason_log": log,
                }
                for payload, secret in made
            ]
        )

    def _sts_management_tokens(self, action, watts, key_revision, tariff):
        """[(payload, secret)] of the STS management token(s) of ``action``."""
        key = self._sts_decoder_key()
        if action == "key_change":
            return self._sts_key_change(key, key_revision, tariff or self.sts_tariff_index)
        tid, moment = self._sts_take_tid()
        base = self._sts_base_date()
        payload = {"action": action, "tid": tid}
        if action == "max_power":
            if watts <= 0:
                raise UserError(self.env._("The maximum power limit is a positive number of W."))
            token = sts.encode_max_power_limit(key, watts, moment, base_date=base)
            payload["watts"] = sts.decode_amount(sts.encode_amount(watts, exact=False))
        elif action == "clear_credit":
            token = sts.encode_clear_credit(key, moment, base_date=base)
        elif action == "clear_tamper":
            token = sts.encode_clear_tamper(key, moment, base_date=base)
        else:
            raise UserError(self.env._("Unknown management token %s.", action))
        return [(payload, {"keypad": token})]

    def _sts_key_change(self, key, key_revision, tariff):
        """The two key change tokens to the decoder key of ``key_revision`` and ``tariff``;
        the meter's parameters move to them."""
        if key_revision is None or not 1 <= key_revision <= 9:
            raise UserError(self.env._("The new key revision is 1 to 9."))
        if (key_revision, tariff) == (self.sts_key_revision, self.sts_tariff_index):
            raise UserError(self.env._("A key change needs a new key revision or tariff index."))
        new_key = self._sts_decoder_key(key_revision, tariff)
        first, second = sts.encode_key_change(
            key, new_key, key_revision, int(tariff), self.sts_key_type
        )
        self.write({"sts_key_revision": key_revision, "sts_tariff_index": tariff})
        payload = {"action": "key_change", "key_revision": key_revision, "tariff_index": tariff}
        return [
            ({**payload, "part": 1}, {"keypad": first}),
            ({**payload, "part": 2}, {"keypad": second}),
        ]

    def _own_management_tokens(self, action):
        """[(payload, secret)] of the own-format token of ``action`` (clear credit or
        clear tamper), numbered with the meter's sequence."""
        kinds = {
            "clear_credit": tokens.TokenKind.CLEAR_CREDIT,
            "clear_tamper": tokens.TokenKind.CLEAR_TAMPER,
        }
        if action not in kinds:
            raise UserError(
                self.env._("Meters of the own token format take clear credit and clear tamper.")
            )
        key = self.company_id._prepaid_vending_key()
        sequence = self._next_token_sequence()
        try:
            binary = tokens.issue_token(
                key, self.address or "", kinds[action], Decimal(0), sequence
            )
            keypad = tokens.issue_keypad_token(
                key, self.address or "", kinds[action], Decimal(0), sequence
            )
        except tokens.TokenError as exc:
            raise UserError(
                self.env._("Cannot issue the token: %s", error_text(self.env, exc))
            ) from exc
        secret = {"token": tokens.token_to_text(binary), "keypad": keypad}
        return [({"action": action, "sequence": sequence}, secret)]
