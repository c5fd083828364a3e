"""B13/G6: every credit sold for a meter-balance meter becomes a token delivered by the
meter's channel.

For each credit to issue, under the meter's row lock: the project's own format makes a
credit command, whose minting numbers the token with the meter's sequence; STS turns the
money into energy at the meter's single price (the money not carried is kept for the next
token) and takes the meter's next token identifier. A device credit is sent by its gateway
as any command and is applied when the meter confirms it; keypad and card credits are
commands *handed over* (never sent), so every token is in the meter's command list. One
command per credit (R10); a credit whose token cannot be made stays *To Issue* with the
reason (R12).
"""

import base64
import logging
from decimal import Decimal

from odoo import fields, models
from odoo.exceptions import UserError, ValidationError

from odoo.addons.prepaid_meter.utils import selection_label

from prepaid_core import sts, tokens

from ..const import HANDED_STATE

_logger = logging.getLogger(__name__)


class PrepaidMeterCredit(models.Model):
    _inherit = "prepaid.meter.credit"

    command_ids = fields.One2many("meter.gateway.command", "credit_id", string="Delivery")
    card_payload = fields.Binary(
        compute="_compute_card_payload",
        groups="prepaid_meter.group_prepaid_manager",
        help="The 40-byte token an IC-card credit writes to the tenant's card.",
    )

    def _compute_card_payload(self):
        for credit in self:
            token = credit.sudo().token if credit.channel == "card" else False
            credit.card_payload = (
                base64.b64encode(tokens.token_from_text(token)) if token else False
            )

    # === ISSUE === #

    def _issue_token(self):
        super()._issue_token()
        for credit in self.sudo().filtered(lambda c: c.state == "to_issue").sorted("id"):
            credit._issue_one()
        return self

    def _issue_one(self):
        """Make and deliver the token of this credit, or leave it *To Issue* with why."""
        self.ensure_one()
        meter = self.meter_id
        if meter.billing_mode != "meter":
            # a token would credit a meter the server already deducts for: twice
            self.reason = self.env._("No token issued: the meter keeps no balance.")
            return
        try:
            with self.env.cr.savepoint():
                meter._lock_for_tokens()
                if meter.token_format == "sts":
                    vals = self._issue_sts(meter)
                else:
                    vals = self._issue_own(meter)
        except (UserError, ValidationError) as exc:
            reason = self.env._("No token issued: %s", exc.args[0] if exc.args else exc)
            self.write({"reason": reason})
            _logger.info("meter credit %s stays to issue: %s", self.id, reason)
            return
        self.write(vals)
        self._mark_issued(
            self.env._(
                "Token %(reference)s issued (%(channel)s).",
                reference=vals["token_reference"],
                channel=selection_label(self, "channel", vals["channel"]),
            )
        )
        if self.channel == "card":
            self._write_card(base64.b64decode(self.card_payload))

    def _issue_own(self, meter):
        """The project's own format: the credit command mints the token (text form for
        the meter's connection and the card, 20 digits for the keypad)."""
        amount = Decimal(f"{self.amount:.4f}")
        command = self._create_delivery(meter, {"amount": str(amount)})
        secret = command.token_secret or {}
        if meter.credit_channel == "keypad" and not secret.get("keypad"):
            raise UserError(
                self.env._(
                    "%(amount)s does not fit a keypad token (at most 163,830, two decimals).",
                    amount=amount,
                )
            )
        return {
            "channel": meter.credit_channel,
            "token": secret["keypad"] if meter.credit_channel == "keypad" else secret["token"],
            "token_reference": str(command.payload["sequence"]),
        }

    def _issue_sts(self, meter):
        """STS: the money and what earlier tokens did not carry become tenths of a unit at
        the meter's price, rounded down to what the token carries; the rest waits for the
        next token."""
        if meter.credit_channel != "keypad":
            raise UserError(self.env._("STS tokens are typed on the meter's keypad only."))
        price = meter._sts_unit_price()
        if price is None:
            raise UserError(
                self.env._(
                    "An STS token carries energy, and meter %(meter)s has no single price "
                    "to convert the money at (its tariff has none, or several).",
                    meter=meter.display_name,
                )
            )
        amount = Decimal(f"{self.amount:.4f}")
        tenths, rest = sts.energy_for_money(amount + meter._meter_credit_not_carried(), price)
        if not tenths:
            raise UserError(self.env._("The credit buys less than a tenth of a unit."))
        key = meter._sts_decoder_key()
        tid, moment = meter._sts_take_tid()
        energy = Decimal(tenths) / 10
        token = sts.encode_credit(
            key,
            energy,
            moment,
            subclass=meter._sts_credit_subclass(),
            base_date=meter._sts_base_date(),
        )
        meter.sudo().credit_not_carried = float(rest)
        payload = {"amount": str(amount), "price": str(price), "energy": str(energy), "tid": tid}
        self._create_delivery(meter, payload, secret={"keypad": token})
        return {"channel": "keypad", "token": token, "token_reference": str(tid)}

    def _create_delivery(self, meter, payload, secret=None):
        """The credit command of this credit: queued for the gateway when the meter takes
        tokens over its connection, else handed over (never sent)."""
        Command = self.env["meter.gateway.command"].sudo()
        state = "queued" if meter.credit_channel == "device" else HANDED_STATE
        reason = self.env._("meter credit %s", self.name)
        vals = {
            "meter_id": meter.id,
            "kind": "credit",
            "credit_id": self.id,
            "payload": payload,
            "origin": "billing",
            "reason": reason,
            "state": state,
            "reason_log": Command._log_line(state, reason),
        }
        if secret:
            vals["token_secret"] = secret
        return Command.create(vals)

    def _write_card(self, payload):
        """Hand an IC-card credit's payload (the 40-byte token, ``bytes``) to the desk's
        card writer; return whether it was written.

        No card writer ships with the suite (it is hardware): this returns ``False`` and
        the manager downloads the payload (*Card Payload* on the credit) for the writer's
        own software. A card-writer module overrides this method, writes the card and
        returns ``True``; it is called once, when the credit is issued."""
        return False

    def action_download_card_payload(self):
        """Managers: the card payload of an IC-card credit, as a file."""
        self.ensure_one()
        if not self.env.user.has_group("prepaid_meter.group_prepaid_manager"):
            raise UserError(self.env._("Only managers read a token."))
        if self.channel != "card" or not self.card_payload:
            raise UserError(self.env._("This credit has no card payload."))
        return {
            "type": "ir.actions.act_url",
            "url": f"/web/content/prepaid.meter.credit/{self.id}/card_payload/"
            f"{self.name.replace('/', '-')}.bin?download=true",
            "target": "self",
        }

    # === CANCEL === #

    def _queued_delivery(self):
        """The credit command of this credit still waiting in the queue, never sent."""
        return self.sudo().command_ids.filtered(lambda c: c.state == "queued" and not c.sent_at)

    def _cancel_blocker(self):
        """A device credit whose command was never sent can still be cancelled."""
        self.ensure_one()
        if self.state == "issued" and self._queued_delivery():
            return None
        return super()._cancel_blocker()

    def _cancel(self, reason):
        for credit in self:
            credit._queued_delivery()._update_state("queued", "cancelled", reason)
        return super()._cancel(reason)
