import logging
from collections import defaultdict
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from odoo import Command, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from prepaid_core import balance, invoicing

_logger = logging.getLogger(__name__)

ZERO = balance.ZERO
#: ledger lines an invoice bills: consumption, fixed charges and common-area shares
INVOICED_KINDS = (balance.DEDUCTION, balance.FIXED_CHARGE, balance.COMMON_AREA)


def _dec(value, places=4):
    return Decimal(f"{value or 0.0:.{places}f}")


def _rate(value):
    """A tariff unit price (text or float) as the Decimal that keys an invoice part."""
    return Decimal(str(value or 0)).quantize(invoicing.PRICE_QUANTUM)


class PrepaidAccount(models.Model):
    """B9, B14, B15: what is charged is invoiced with native customer invoices.

    On each account's billing day (the billing day of its tariff) a scheduled action bills
    what the ledger charged before that day: consumption (one line per product, band and
    ladder step, taxes from the product, included in the tariff price), fixed charges (one
    line per charge and cycle, taxes from the charge's product, added as in the ledger) and
    common-area shares (one line per share, naming the common meter); posted and reconciled
    against the tenant's prepayments.  Amounts are cumulative per product: an invoice bills
    ``round(charged so far) - invoiced so far``, so what is charged late (a meter's backlog,
    a charge posted by a run restarted) is billed by the next invoice, once, and sub-cent
    remainders never drift.  Cancellation issues the final invoice and settles the last
    sub-cent remainder with a rounding line in the ledger."""

    _inherit = "prepaid.account"

    invoice_ids = fields.One2many("account.move", "prepaid_account_id", string="Invoices")
    invoice_count = fields.Integer(compute="_compute_invoice_count")
    invoiced_until = fields.Date(
        readonly=True,
        copy=False,
        help="Consumption charged before this day is invoiced.",
    )

    @api.depends("invoice_ids")
    def _compute_invoice_count(self):
        for account in self:
            account.invoice_count = len(account.sudo().invoice_ids)

    # === BILLING DAY === #
    def _billing_date(self, today):
        """The latest billing day on or before ``today``."""
        self.ensure_one()
        day = min(max(self.tariff_id.billing_day or 1, 1), 28)
        if today.day >= day:
            return today.replace(day=day)
        previous = today.replace(day=1) - timedelta(days=1)
        return previous.replace(day=day)

    @api.model
    def _invoicing_candidates(self, today, account_ids=None):
        """Open accounts of companies invoicing consumption whose latest billing day has not
        been invoiced yet (one query, whatever the number of accounts), in the companies
        of the user (all of them for the scheduler); among ``account_ids`` if given."""
        self.env.cr.execute(
            SQL(
                """
                WITH acc AS (
                    SELECT a.id, a.invoiced_until,
                           LEAST(GREATEST(COALESCE(t.billing_day, 1), 1), 28) AS day
                      FROM prepaid_account a
                      JOIN res_company c ON c.id = a.company_id
                      LEFT JOIN prepaid_tariff t ON t.id = a.tariff_id
                     WHERE a.state = 'open' AND c.prepaid_accounting AND %(companies)s
                       AND %(accounts)s
                       AND EXISTS (SELECT 1 FROM prepaid_consumption_product p
                                    WHERE p.company_id = a.company_id)
                )
                SELECT id FROM acc
                 WHERE invoiced_until IS NULL OR invoiced_until < (
                    CASE WHEN EXTRACT(DAY FROM %(today)s::date) >= day
                         THEN date_trunc('month', %(today)s::date)::date + (day - 1)
                         ELSE (date_trunc('month', %(today)s::date) - interval '1 month')::date
                              + (day - 1)
                    END)
                 ORDER BY id
                """,
                today=today,
                # the scheduler runs as superuser (every company); a user, in their companies
                companies=SQL("TRUE")
                if self.env.su
                else SQL("a.company_id = ANY(%s)", self.env.companies.ids),
                accounts=SQL("TRUE")
                if account_ids is None
                else SQL("a.id = ANY(%s)", list(account_ids)),
            )
        )
        return self.browse([row[0] for row in self.env.cr.fetchall()])

    @api.model
    def _cron_invoice_consumption(self, today=None, account_ids=None):
        """Scheduled: invoice every account (of ``account_ids`` if given) whose billing day
        has come.  Each account is one savepoint (one commit from the scheduler): a
        configuration error is posted on the account and the others go on."""
        today = today or fields.Date.context_today(self)
        accounts = self._invoicing_candidates(today, account_ids)
        invoices = self.env["account.move"]
        for index, account in enumerate(accounts, 1):
            try:
                with self.env.cr.savepoint():
                    until = account._billing_date(today)
                    invoices |= account._invoice_consumption(until=until, period=True)
            except UserError as exc:
                _logger.warning("Prepaid account %s not invoiced: %s", account.id, exc)
                account.message_post(body=self.env._("Not invoiced: %(error)s", error=exc))
            if self.env.context.get("prepaid_commit_progress"):
                self.env["ir.cron"]._commit_progress(1, remaining=len(accounts) - index)
        return invoices

    def _invoicing_configured(self):
        self.ensure_one()
        return self._prepaid_accounting() and bool(
            self.env["prepaid.consumption.product"]
            .sudo()
            .search_count([("company_id", "=", self.company_id.id)], limit=1)
        )

    # === CONSUMPTION BY PRODUCT === #
    def _line_utilities(self, lines):
        """For deduction lines written before tariff lines were keyed with their utility
        (``version|band|step``): a function per line giving the utility of a version code,
        the utility of the line's meters, or, for meters of both utilities, that of the
        tariff whose version code it is."""
        meter_ids = {int(m) for line in lines for m in (line.detail or {}).get("meters", {})}
        meters = self.env["prepaid.meter"].sudo().with_context(active_test=False).browse(meter_ids)
        utility_of = {meter.id: meter.utility for meter in meters}
        codes = defaultdict(set)
        for meter in meters:
            for tariff in meter.tariff_id | meter.billing_tariff_id | self.tariff_id:
                for version in tariff.version_ids:
                    codes[version.code].add(tariff.utility)
        default = self.tariff_id.utility or "electricity"

        def resolver(line):
            found = {utility_of.get(int(m)) for m in (line.detail or {}).get("meters", {})}
            found.discard(None)
            if len(found) == 1:
                only = found.pop()
                return lambda _version: only

            def by_code(version):
                candidates = codes.get(version, set()) & found if found else codes.get(version)
                return sorted(candidates)[0] if candidates else default

            return by_code

        return resolver

    def _line_tariffs(self, lines):
        """A function ``(line, utility) -> tariff``: the tariff the line's meters of that
        utility are on (a meter's own, else the account's), when they share one."""
        meter_ids = {int(m) for line in lines for m in (line.detail or {}).get("meters", {})}
        meters = self.env["prepaid.meter"].sudo().with_context(active_test=False).browse(meter_ids)
        tariff_of_meter = {meter.id: meter.tariff_id or self.tariff_id for meter in meters}
        utility_of_meter = {meter.id: meter.utility for meter in meters}

        def tariff_of(line, utility):
            tariffs = {
                tariff_of_meter[int(m)]
                for m in (line.detail or {}).get("meters", {})
                if utility_of_meter.get(int(m)) == utility
            }
            return tariffs.pop() if len(tariffs) == 1 else None

        return tariff_of

    def _consumption_by_part(self, lines):
        """``({part key: Charged}, {product: utility})`` of deduction ledger ``lines``: each
        line's tariff lines (its ``detail``) go to the part ``(product, band, step, unit
        price)`` of their utility, band and ladder step; a line without detail goes to the
        account's utility, flat band.  Amounts and quantities are Decimals."""
        self.ensure_one()
        products = self.env["prepaid.consumption.product"]
        cache, utilities = {}, {}
        tariff_of = self._line_tariffs(lines)

        def product(utility, band, step=0, tariff=None):
            key = (utility, band, step, tariff)
            if key not in cache:
                found = products._product_for(self.company_id, utility, band, tariff, step)
                cache[key] = found
                utilities[found] = utility
            return cache[key]

        resolver = self._line_utilities(lines)
        totals = defaultdict(lambda: [ZERO, Decimal(0)])
        for line in lines:
            utility_of = resolver(line)
            parts = defaultdict(lambda: [ZERO, Decimal(0)])
            for key, values in ((line.detail or {}).get("lines") or {}).items():
                version, band, step, *utility = key.split("|")
                utility = utility[0] if utility else utility_of(version)
                prod = product(utility, band, int(step), tariff_of(line, utility))
                part = parts[prod, band, int(step), _rate(values[2] if len(values) > 2 else 0)]
                part[0] += Decimal(values[1])
                part[1] += Decimal(values[0])
            if not parts:
                fallback = product(self.tariff_id.utility or "electricity", "flat")
                parts[fallback, "flat", 0, _rate(0)] = [ZERO, _dec(line.quantity, 6)]
            # the line's amount is the truth: any difference goes to its largest part
            rest = -_dec(line.amount) - sum((p[0] for p in parts.values()), ZERO)
            if rest:
                parts[max(parts, key=lambda p: parts[p][0])][0] += rest
            for key, (amount, quantity) in parts.items():
                totals[key][0] += amount
                totals[key][1] += quantity
        return {key: invoicing.Charged(*v) for key, v in totals.items()}, utilities

    def _charges_by_part(self, lines, invoiced):
        """``{(product, None, None, None, ledger line): Charged}`` of fixed-charge and
        common-area ledger ``lines``: each its own part, of the product that invoiced it
        already (``invoiced``) or else of the charge's product (a common-area share: the
        consumption product of its tariff's utility)."""
        billed_as = {key[4]: key[0] for key in invoiced if len(key) > 4}
        products = self.env["prepaid.consumption.product"]
        parts = {}
        for line in lines:
            product = billed_as.get(line)
            if product is None and line.kind == balance.FIXED_CHARGE:
                product = line.charge_id.product_id
            elif product is None:
                tariff = line.common_period_id.common_area_id.tariff_id
                product = products._product_for(self.company_id, tariff.utility, "flat", tariff)
            parts[product, None, None, None, line] = invoicing.Charged(-_dec(line.amount), ZERO)
        return parts

    def _invoiced_by_part(self):
        """{part key: Charged} already invoiced (posted invoices less credit notes); lines
        of invoices made before lines had parts are keyed by their product alone, lines of
        a fixed charge or common-area share by their product and ledger line."""
        self.ensure_one()
        places = self.currency_id.decimal_places
        lines = (
            self.env["account.move.line"]
            .sudo()
            .search(
                [
                    ("move_id.prepaid_account_id", "=", self.id),
                    ("parent_state", "=", "posted"),
                    ("display_type", "=", "product"),
                ]
            )
        )
        totals = defaultdict(lambda: [ZERO, Decimal(0)])
        for line in lines:
            sign = -1 if line.move_id.move_type == "out_refund" else 1
            key = (line.product_id, None, None, None)
            if line.prepaid_line_id:
                key = (line.product_id, None, None, None, line.prepaid_line_id)
            elif line.prepaid_band:
                key = (
                    line.product_id,
                    line.prepaid_band,
                    line.prepaid_step,
                    _rate(line.prepaid_rate),
                )
            totals[key][0] += sign * _dec(line._prepaid_billed_amount(), places)
            totals[key][1] += sign * _dec(line.prepaid_quantity, 6)
        return {key: invoicing.Charged(*v) for key, v in totals.items()}

    def _invoiced_by_product(self):
        """{product: [amount, quantity]} already invoiced (posted invoices less credit notes)."""
        totals = defaultdict(lambda: [ZERO, Decimal(0)])
        for key, charged in self._invoiced_by_part().items():
            totals[key[0]][0] += charged.amount
            totals[key[0]][1] += charged.quantity
        return totals

    # === INVOICING === #
    def _invoice_consumption(self, until=None, period=False):
        """Invoice what was charged before ``until`` (a date; ``None``: all of it, the
        final invoice); with ``period``, as the invoice of the billing period ending then
        (one per account and period: a unique index).  Returns the invoice (none when
        nothing is left to bill)."""
        self.ensure_one()
        self.check_access("read")
        if not self._invoicing_configured():
            return self.env["account.move"]
        self._lock_balance()  # serialises with deductions, recharges and other invoicing
        if period and self._period_invoice(until):
            self._mark_invoiced_until(until)
            return self.env["account.move"]
        domain = [("account_id", "=", self.id), ("kind", "in", INVOICED_KINDS)]
        if until:
            domain.append(("date", "<", until))
        lines = self.env["prepaid.account.line"].sudo().search(domain, order="date, id")
        deductions = lines.filtered(lambda line: line.kind == balance.DEDUCTION)
        consumed, utilities = self._consumption_by_part(deductions)
        invoiced = self._invoiced_by_part()
        consumed.update(self._charges_by_part(lines - deductions, invoiced))
        quantum = Decimal(1).scaleb(-self.currency_id.decimal_places)
        digits = self.env["decimal.precision"].precision_get("Product Unit")
        parts = invoicing.parts_to_invoice(
            consumed,
            invoiced,
            quantum,
            rate_of=lambda key: key[3] or None,
            quantity_quantum=Decimal(1).scaleb(-digits),
            rule_of=self._line_rules(quantum),
        )
        new_lines = lines.filtered(lambda line: not line.invoice_id)
        invoice = self.env["account.move"]
        if parts:
            invoice = self._create_consumption_invoice(
                parts, new_lines, until, utilities=utilities, period=period
            )
            new_lines.write({"invoice_id": invoice.id})
        self._mark_invoiced_until(until or fields.Date.context_today(self))
        return invoice

    def _period_invoice(self, until):
        """The invoice (not cancelled) of the billing period ending on ``until``."""
        return (
            self.env["account.move"]
            .sudo()
            .search(
                [
                    ("prepaid_account_id", "=", self.id),
                    ("prepaid_period", "=", until),
                    ("state", "!=", "cancel"),
                ],
                limit=1,
            )
        )

    def _mark_invoiced_until(self, reached):
        """Always an update of the account row: a concurrent invoicing of this account that
        waited on the lock then fails to serialise and is retried, seeing this invoice."""
        self.env.cr.execute(
            "UPDATE prepaid_account SET invoiced_until = GREATEST(invoiced_until, %s) "
            "WHERE id = %s",
            [reached, self.id],
        )
        self.invalidate_recordset(["invoiced_until"])

    def _invoice_line_values(self, parts, sign, period, utilities):
        """One invoice line per part: consumption in the utility's unit of measure with
        its unit price, the band and ladder step named where the product has several; a
        fixed charge or common-area share once, named by its ledger line.  Each line
        gets the taxes its price was chosen with (:meth:`_line_rules`)."""
        consumption = [part for part in parts if len(part.key) == 4]
        bands = {p.key[0]: set() for p in consumption}
        steps = {p.key[0]: set() for p in consumption}
        for part in consumption:
            bands[part.key[0]].add(part.key[1])
            steps[part.key[0]].add(part.key[2])
        band_labels = dict(
            self.env["account.move.line"]._fields["prepaid_band"]._description_selection(self.env)
        )
        fiscal = self._invoice_fiscal_position()
        values = []
        for part in parts:
            product = part.key[0]
            if len(part.key) > 4:
                line = self._charge_line_values(part, sign)
            else:
                _product, band, step, _rate = part.key
                label = product.display_name
                if len(bands[product]) > 1 or band not in ("flat", None):
                    label += f" - {band_labels.get(band, band)}"
                if len(steps[product]) > 1 or (step or 0) > 1:
                    label += " - " + self.env._("step %(step)s", step=step)
                uom = self._utility_uom(utilities.get(product))
                line = self._consumption_line_values(part, sign, period, label, uom)
            line["tax_ids"] = [Command.set(self._part_taxes(part.key, fiscal).ids)]
            values.append(line)
        return values

    def _consumption_line_values(self, part, sign, period, label, uom):
        """The values of a consumption part's line: its quantity in ``uom`` and unit
        price, or (no price giving its amount for that quantity) the amount once with the
        quantity in the description."""
        product, band, step, rate = part.key
        if part.quantity and not part.shown_quantity:
            label = self.env._(
                "%(line)s, %(quantity)s %(unit)s",
                line=label,
                quantity=f"{part.quantity.normalize():f}",
                unit=uom.name,
            )
        return {
            "product_id": product.id,
            "name": f"{label} ({period})" if period else label,
            "quantity": float(sign * (part.shown_quantity or 1)),
            "price_unit": float(part.unit_price),
            "product_uom_id": uom.id if part.shown_quantity else product.uom_id.id,
            "prepaid_quantity": float(sign * part.quantity),
            "prepaid_band": band or False,
            "prepaid_step": step or 0,
            "prepaid_rate": float(rate or 0),
        }

    def _charge_line_values(self, part, sign):
        """The values of a fixed charge's or common-area share's line: once, named by its
        ledger line (the charge and its cycle; the common meter and its cycle)."""
        product, line = part.key[0], part.key[4]
        label = line.memo or line.display_name
        if line.kind == balance.COMMON_AREA:
            label = self.env._("Common-area share: %(memo)s", memo=label)
        return {
            "product_id": product.id,
            "name": label,
            "quantity": float(sign),
            "price_unit": float(part.unit_price),
            "product_uom_id": product.uom_id.id,
            "prepaid_line_id": line.id,
        }

    def _invoice_fiscal_position(self):
        """The fiscal position the tenant's invoices get (that of the invoice's partner)."""
        company = self.company_id.sudo()
        positions = self.env["account.fiscal.position"].sudo().with_company(company)
        return positions._get_fiscal_position(self.partner_id)

    def _part_taxes(self, key, fiscal):
        """The taxes of a part's invoice line: a fixed charge's are its product's, as its
        ledger line added them; consumption's and a common-area share's are their
        product's, through the tenant's fiscal position."""
        company = self.company_id
        if len(key) > 4 and key[4].kind == balance.FIXED_CHARGE:
            return key[4].charge_id.product_id.taxes_id._filter_taxes_by_company(company)
        taxes = key[0].taxes_id._filter_taxes_by_company(company)
        return fiscal.map_tax(taxes) if fiscal else taxes

    def _line_rules(self, quantum):
        """A function giving the :class:`~prepaid_core.invoicing.LineRule` of a part key:
        its line's percent taxes (:meth:`_part_taxes`), the company's tax rounding, the
        digits of a product price; a fixed charge's line bills its price with taxes."""
        company = self.company_id.sudo()
        digits = self.env["decimal.precision"].precision_get("Product Price")
        per_line = company.tax_calculation_rounding_method == "round_per_line"
        fiscal = self._invoice_fiscal_position()

        def rule_of(key):
            taxes = tuple(
                invoicing.Tax(Decimal(str(tax.amount)) / 100, bool(tax.price_include))
                for tax in self._part_taxes(key, fiscal)
                if tax.amount_type == "percent"
            )
            charge = len(key) > 4 and key[4].kind == balance.FIXED_CHARGE
            return invoicing.LineRule(quantum, digits, taxes, per_line, with_taxes=charge)

        return rule_of

    def _create_consumption_invoice(self, parts, lines, until, utilities=None, period=False):
        company = self.company_id.sudo()
        total = sum((part.amount for part in parts), ZERO)
        sign = 1 if total >= 0 else -1
        today = fields.Date.context_today(self)
        first = lines[:1].date or self.invoiced_until
        last = lines[-1:].date or ((until - timedelta(days=1)) if until else today)
        text = self.env._("%(first)s to %(last)s", first=first, last=last) if first else ""
        invoice = (
            self.env["account.move"]
            .sudo()
            .with_company(company)
            .create(
                {
                    "move_type": "out_invoice" if sign > 0 else "out_refund",
                    "partner_id": self.partner_id.id,
                    "journal_id": company._prepaid_sale_journal().id,
                    "company_id": company.id,
                    "currency_id": company.currency_id.id,
                    "invoice_date": min(until or today, today),
                    "invoice_origin": self.name,
                    "prepaid_account_id": self.id,
                    "prepaid_invoiced_until": until or today,
                    "prepaid_period": until if period and sign > 0 else False,
                    "invoice_line_ids": [
                        Command.create(values)
                        for values in self._invoice_line_values(parts, sign, text, utilities or {})
                    ],
                }
            )
        )
        self._settle_line_rounding(invoice, abs(total))
        self._check_invoice_total(invoice, abs(total))
        invoice.action_post()
        self._reconcile_prepayments()
        self.message_post(
            body=self.env._(
                "Consumption invoiced: %(invoice)s, %(total)s.",
                invoice=invoice._get_html_link(),
                total=invoice.amount_total,
            )
        )
        return invoice

    def _settle_line_rounding(self, invoice, charged):
        """The last resort when the lines' prices could not make them bill what was
        charged (a tax rounding that skips the amount, taxes the prices were not chosen
        for): a line of the largest line's part bills the cents missing or over, without
        quantity, so that part's invoiced total stays what was charged.  More than a cent
        a line is left to the total's check."""
        lines = invoice.invoice_line_ids
        billed = sum(lines.mapped(lambda line: line._prepaid_billed_amount()))
        difference = invoice.currency_id.round(float(charged) - billed)
        if not difference or abs(difference) > invoice.currency_id.rounding * len(lines):
            return
        largest = max(lines, key=lambda line: abs(line._prepaid_billed_amount()))
        invoice.write(
            {
                "invoice_line_ids": [
                    Command.create(
                        {
                            "product_id": largest.product_id.id,
                            "name": self.env._("%(line)s (rounding)", line=largest.name),
                            "quantity": 1,
                            "price_unit": difference,
                            "tax_ids": [Command.set(largest.tax_ids.ids)],
                            "prepaid_quantity": 0.0,
                            "prepaid_band": largest.prepaid_band,
                            "prepaid_step": largest.prepaid_step,
                            "prepaid_rate": largest.prepaid_rate,
                            "prepaid_line_id": largest.prepaid_line_id.id,
                        }
                    )
                ]
            }
        )

    def _check_invoice_total(self, invoice, charged):
        """The invoice's lines bill exactly what was charged: taxes included in the price
        of consumption, or (postpaid only) added to it; a prepaid balance pays taxes
        included (a fixed charge's ledger line has its taxes added already)."""
        lines = invoice.invoice_line_ids
        priced = lines.filtered(lambda line: line.prepaid_line_id.kind != balance.FIXED_CHARGE)
        excluded = priced.tax_ids.filtered(lambda tax: not tax.price_include)
        billed = sum(lines.mapped(lambda line: line._prepaid_billed_amount()))
        if (excluded and not self._taxes_may_be_added()) or invoice.currency_id.compare_amounts(
            billed, float(charged)
        ):
            raise UserError(
                self.env._(
                    "Invoice of %(account)s bills %(total)s instead of the %(charged)s charged: "
                    "the consumption products' taxes must be included in the price.",
                    account=self.display_name,
                    total=billed,
                    charged=charged,
                )
            )

    def _taxes_may_be_added(self):
        """Whether this account's invoices may add taxes to the prices charged (no)."""
        return False

    @api.model
    def _utility_uom(self, utility):
        """The unit of measure of a utility's consumption: kWh or m³."""
        xmlid = "uom.product_uom_cubic_meter" if utility == "water" else "uom.product_uom_kwh"
        return self.env.ref(xmlid).sudo()

    def action_invoice_consumption(self):
        """Managers: invoice what has been charged before today, now."""
        today = fields.Date.context_today(self)
        invoices = self.env["account.move"]
        for account in self:
            account._check_open()
            invoices |= account._invoice_consumption(until=today)
        if invoices and self.env["account.move"].has_access("read"):
            return self.action_view_invoices(invoices)
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "message": self.env._("%(count)s invoices posted.", count=len(invoices)),
                "type": "success",
            },
        }

    def action_view_invoices(self, invoices=None):
        invoices = invoices if invoices is not None else self.sudo().invoice_ids
        action = self.env["ir.actions.act_window"]._for_xml_id("account.action_move_out_invoice")
        action.update(domain=[("id", "in", invoices.ids)], context={"create": False})
        return action

    # === CANCELLATION === #
    def action_close(self):
        """B5 + B9: before the final settlement, charge what is due, issue the final invoice
        and bring the balance to the cent; the refund of the balance is an outbound payment."""
        for account in self:
            if not account._prepaid_accounting():
                super(PrepaidAccount, account).action_close()
                continue
            account._check_open()
            meters = account.with_context(active_test=False).meter_ids
            account._run_deductions(meter_ids=meters.ids, manual=True)
            account._invoice_consumption(until=None)
            account._settle_rounding()
            before = account.line_ids
            super(PrepaidAccount, account).action_close()
            refunds = (account.line_ids - before).filtered(
                lambda line: line.kind == "refund" and not line.payment_id
            )
            for line in refunds:
                payment = account._create_prepaid_payment(
                    "outbound",
                    _dec(-line.amount),
                    self.env.context.get("prepaid_refund_method", "cash"),
                    line.memo or "",
                )
                line.sudo().write({"payment_id": payment.id, "payment_method": "cash"})
            account._reconcile_prepayments()
        return True

    def _settle_rounding(self):
        """After the final invoice, move the balance by the sub-cent difference between what
        was charged (4 decimals) and invoiced (cents), so that what is left is
        exactly what the accounting owes the tenant (or the tenant owes)."""
        self.ensure_one()
        bal, _preset = self._lock_balance()
        quantum = Decimal(1).scaleb(-self.currency_id.decimal_places)
        if self._invoicing_configured():
            self.env["prepaid.account.line"].flush_model()
            self.env.cr.execute(
                """
                SELECT COALESCE(-SUM(amount), 0)::text FROM prepaid_account_line
                 WHERE account_id = %s AND (kind = ANY(%s) OR invoice_rounding)
                """,
                [self.id, list(INVOICED_KINDS)],
            )
            consumed = Decimal(self.env.cr.fetchone()[0])
            invoiced = sum((v[0] for v in self._invoiced_by_product().values()), ZERO)
            delta = consumed - invoiced
            rounding = True
        else:
            delta = bal.quantize(quantum, ROUND_HALF_UP) - bal
            rounding = False
        if not delta:
            return False
        line = balance.adjustment(delta, self.env._("Rounding to the cent at cancellation"))
        return self._post_lines(
            [line],
            invoice_rounding=rounding,
            invoice_id=self.sudo().invoice_ids.sorted("id")[-1:].id if rounding else False,
        )

    # === DEMO === #
    @api.model
    def _demo_invoice_accounts(self):
        """Demo data: invoice what the demo accounts have consumed so far."""
        today = fields.Date.context_today(self) + timedelta(days=1)
        for account in self.search([("state", "=", "open")]):
            account._invoice_consumption(until=today)
