import logging

from werkzeug.exceptions import NotFound

from odoo import http
from odoo.exceptions import AccessError, MissingError, UserError, ValidationError
from odoo.http import request
from odoo.tools import consteq, float_round, format_amount

from odoo.addons.payment import utils as payment_utils
from odoo.addons.payment.controllers.portal import PaymentPortal

from ..const import SESSION_METER_TOKENS

_logger = logging.getLogger(__name__)

#: codes a redirect may put in the meter page's address (anything else is ignored)
PAGE_MESSAGES = ("read_requested", "alert_saved")
PAGE_ERRORS = ("no_account", "not_in_service")


class PrepaidPortal(PaymentPortal):
    """Tenant pages (T1 QR landing, T3 my meters, T4 recharge, T5 history, T6 alerts).

    Access to a meter page is granted by ownership (the tenant of the meter's open tenancy,
    checked with an explicit domain: meters are backend records a portal user cannot read)
    or by a QR/share token proven once in this session.  Any refusal looks the same,
    whether the meter exists or not."""

    # === ACCESS === #
    def _prepaid_own_meter_domain(self):
        partner = request.env.user.partner_id.commercial_partner_id
        return [
            ("state", "!=", "removed"),
            (
                "unit_id.tenancy_ids",
                "any",
                [("state", "=", "open"), ("partner_id", "child_of", partner.id)],
            ),
        ]

    def _prepaid_own_meters(self):
        """The meters of the logged-in tenant (sudo: meters are backend records, the
        ownership domain is the gate)."""
        if request.env.user._is_public():
            return request.env["prepaid.meter"].sudo().browse()
        return request.env["prepaid.meter"].sudo().search(self._prepaid_own_meter_domain())

    @staticmethod
    def _prepaid_session_meters():
        """``{meter id: digest of the token proven}`` of this session."""
        proven = request.session.get(SESSION_METER_TOKENS)
        if not isinstance(proven, dict):
            return {}
        return {int(k): v for k, v in proven.items() if str(k).isdigit()}

    def _prepaid_remember_meter(self, meter_sudo):
        """Remember that this session proved the meter's current token (its digest: a
        renewed token ends the access, T1/T7)."""
        proven = self._prepaid_session_meters()
        proven.pop(meter_sudo.id, None)
        proven[meter_sudo.id] = meter_sudo.qr_token_digest
        request.session[SESSION_METER_TOKENS] = {str(k): v for k, v in list(proven.items())[-20:]}

    def _prepaid_session_proves(self, meter_sudo):
        digest = self._prepaid_session_meters().get(meter_sudo.id)
        return bool(
            digest and meter_sudo.qr_token_digest and consteq(digest, meter_sudo.qr_token_digest)
        )

    def _prepaid_meter_access(self, meter_id, access_token=None):
        """The meter (sudo) this visitor may see; raise AccessError otherwise.

        Returns ``(meter, owner)`` where ``owner`` tells a tenant of the meter."""
        meter_sudo = request.env["prepaid.meter"].sudo().browse(meter_id).exists()
        if not meter_sudo or meter_sudo.state == "removed":
            raise AccessError(request.env._("No such meter."))
        if not request.env.user._is_public() and meter_sudo.search_count(
            [*self._prepaid_own_meter_domain(), ("id", "=", meter_id)], limit=1
        ):
            return meter_sudo, True
        if access_token:
            if meter_sudo.access_token and consteq(meter_sudo.access_token, access_token):
                self._prepaid_remember_meter(meter_sudo)
                return meter_sudo, False
            raise AccessError(request.env._("No such meter."))
        if self._prepaid_session_proves(meter_sudo):
            return meter_sudo, False
        raise AccessError(request.env._("No such meter."))

    def _prepaid_needs_login(self, meter_sudo, owner):
        return (
            not owner
            and request.env.user._is_public()
            and not meter_sudo.company_id.prepaid_qr_anonymous
        )

    def _prepaid_login_redirect(self, path):
        return request.redirect(f"/web/login?redirect={path}")

    def _prepaid_partner(self, meter_sudo):
        """Who pays: the logged-in user, else the meter's tenant."""
        if not request.env.user._is_public():
            return request.env.user.partner_id
        return meter_sudo.tenant_id

    def _prepaid_visible_credits(self, meter_sudo, lines):
        """The meter credits (B13) that the ledger ``lines`` sent and this visitor may see
        (sudo, tokens included): those of the page's meter, which the visitor was let in
        for, and of the tenant's own meters; never another tenant's."""
        meters = meter_sudo | self._prepaid_own_meters()
        return lines.sudo().meter_credit_id.filtered(lambda credit: credit.meter_id in meters)

    # === HOME (T3) === #
    def _prepare_home_portal_values(self, counters):
        values = super()._prepare_home_portal_values(counters)
        if "prepaid_meter_count" in counters:
            values["prepaid_meter_count"] = len(self._prepaid_own_meters())
        return values

    # === T1 QR LANDING === #
    @http.route(
        "/my/meter/qr/<string:token>",
        type="http",
        auth="public",
        website=True,
        sitemap=False,
        readonly=False,
    )
    def prepaid_qr_landing(self, token, **kw):
        """The QR code of a meter: the token is proven once, kept in the session, and the
        visitor continues on the meter's page (the token appears in no further URL)."""
        meter_sudo = request.env["prepaid.meter"]._portal_find_by_token(token)
        if not meter_sudo or meter_sudo.state == "removed":
            raise NotFound()
        self._prepaid_remember_meter(meter_sudo)
        return request.redirect(f"/my/meters/{meter_sudo.id}")

    # === T3 MY METERS === #
    @http.route(["/my/meters"], type="http", auth="user", website=True)
    def prepaid_my_meters(self, **kw):
        meters = self._prepaid_own_meters()
        values = self._prepare_portal_layout_values()
        values.update({"meters": meters, "page_name": "prepaid_meters"})
        return request.render("prepaid_portal.portal_my_meters", values)

    def _prepaid_meter_page(self, meter_id, back):
        """``(meter, owner, None)`` for a page of the meter, else ``(None, None, response)``:
        back to /my for a foreign or missing meter (answered like a missing one), to the
        login for a page that needs it (returning to ``back``)."""
        try:
            meter_sudo, owner = self._prepaid_meter_access(meter_id)
        except (AccessError, MissingError):
            return None, None, request.redirect("/my")
        if self._prepaid_needs_login(meter_sudo, owner):
            return None, None, self._prepaid_login_redirect(back)
        return meter_sudo, owner, None

    @staticmethod
    def _prepaid_meter_reported_balance(meter_sudo):
        """B13: ``{"balance", "read_at"}`` the meter last reported if it keeps its own
        balance and ever reported one, else None."""
        if meter_sudo.billing_mode != "meter":
            return None
        reported = meter_sudo._last_reported_meter_balance().get(meter_sudo.id)
        # shown, never computed with: the monetary widget formats floats
        return reported and {**reported, "balance": float(reported["balance"])}

    def _prepaid_meter_values(self, meter_sudo, owner, **kw):
        account = meter_sudo.account_id
        company = meter_sudo.company_id
        recharges = (
            request.env["prepaid.online.recharge"]
            .sudo()
            .search(
                [
                    ("meter_id", "=", meter_sudo.id),
                    ("kind", "=", "recharge"),
                    # a checkout left unpaid is not shown; a transfer awaiting the bank is
                    "|",
                    ("state", "!=", "pending"),
                    ("transaction_id.state", "=", "pending"),
                ],
                limit=5,
            )
        )
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "meter": meter_sudo,
                "account": account,
                "owner": owner,
                "currency": account.currency_id or company.currency_id,
                "presets": company._prepaid_recharge_presets(),
                "recharge_min": company.prepaid_recharge_min,
                "recharge_max": company.prepaid_recharge_max,
                "recharges": recharges,
                "credits": self._prepaid_visible_credits(meter_sudo, recharges.line_ids),
                "read_request": meter_sudo.read_request_ids[:1],
                "meter_reported": self._prepaid_meter_reported_balance(meter_sudo),
                "page_name": "prepaid_meter",
                "message": kw.get("message") if kw.get("message") in PAGE_MESSAGES else None,
                "error": kw.get("error") if kw.get("error") in PAGE_ERRORS else None,
                "error_text": kw.get("error_text"),
            }
        )
        return values

    @http.route(
        ["/my/meters/<int:meter_id>"], type="http", auth="public", website=True, readonly=False
    )
    def prepaid_meter_page(self, meter_id, access_token=None, **kw):
        try:
            meter_sudo, owner = self._prepaid_meter_access(meter_id, access_token)
        except (AccessError, MissingError):
            return request.redirect("/my")
        if access_token:  # a shared link: continue without the token in the address
            return request.redirect(f"/my/meters/{meter_id}")
        if self._prepaid_needs_login(meter_sudo, owner):
            return self._prepaid_login_redirect(f"/my/meters/{meter_id}")
        # only the page's known codes come from the address: a text given there is not shown
        codes = {key: kw[key] for key in ("message", "error") if key in kw}
        values = self._prepaid_meter_values(meter_sudo, owner, **codes)
        return request.render("prepaid_portal.portal_meter_page", values)

    @http.route(
        ["/my/meters/<int:meter_id>/read"],
        type="http",
        auth="public",
        methods=["POST"],
        website=True,
    )
    def prepaid_meter_read_now(self, meter_id, **kw):
        meter_sudo, _owner, response = self._prepaid_meter_page(meter_id, f"/my/meters/{meter_id}")
        if response:
            return response
        try:
            meter_sudo._portal_request_read(partner=self._prepaid_partner(meter_sudo))
        except UserError:
            return request.redirect(f"/my/meters/{meter_id}?error=not_in_service")
        return request.redirect(f"/my/meters/{meter_id}?message=read_requested")

    # === T5 HISTORY === #
    @http.route(["/my/meters/<int:meter_id>/history"], type="http", auth="public", website=True)
    def prepaid_meter_history(self, meter_id, period="month", **kw):
        meter_sudo, _owner, response = self._prepaid_meter_page(
            meter_id, f"/my/meters/{meter_id}/history"
        )
        if response:
            return response
        period = period if period in ("day", "year") else "month"
        consumption = meter_sudo._portal_consumption(period=period)
        peak = max((value for _label, value in consumption), default=0.0) or 1.0
        account = meter_sudo.account_id
        spent = meter_sudo._portal_spent(period, [label for label, _value in consumption])
        currency = account.currency_id or meter_sudo.company_id.currency_id
        titles = [
            meter_sudo._portal_sentence(
                "bar_title",
                currency,
                period=full,
                quantity=f"{quantity:.2f}",
                unit=meter_sudo.uom_name or "",
                amount=spent.get(label, 0.0),
            )
            for (label, _q), (_short, full, quantity) in zip(
                consumption, meter_sudo._portal_chart_bars(consumption, period), strict=True
            )
        ]
        payments = (
            request.env["prepaid.account.line"]
            .sudo()
            .search([("account_id", "=", account.id), ("kind", "!=", "deduction")], limit=20)
        )
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "meter": meter_sudo,
                "account": account,
                "period": period,
                "consumption": consumption,
                "bars": meter_sudo._portal_chart_bars(consumption, period),
                "titles": titles,
                "spent_total": meter_sudo._portal_sentence(
                    "spent_total", currency, amount=float(sum(spent.values()))
                ),
                "peak": peak,
                "payments": payments,
                "credits": self._prepaid_visible_credits(meter_sudo, payments),
                "readings": meter_sudo._portal_recent_readings(),
                "page_name": "prepaid_history",
            }
        )
        return request.render("prepaid_portal.portal_meter_history", values)

    # === T6 ALERTS === #
    @http.route(
        ["/my/meters/<int:meter_id>/alerts"],
        type="http",
        auth="user",
        methods=["GET", "POST"],
        website=True,
    )
    def prepaid_meter_alerts(self, meter_id, threshold=None, channel=None, active=None, **kw):
        """Only the tenant (owner) subscribes: an alert goes to their own contact."""
        try:
            meter_sudo, owner = self._prepaid_meter_access(meter_id)
        except (AccessError, MissingError):
            return request.redirect("/my")
        account = meter_sudo.account_id
        if not owner or not account:
            return request.redirect("/my")
        partner = request.env.user.partner_id
        Subscription = request.env["prepaid.alert.subscription"]
        subscription = Subscription.search(
            [("account_id", "=", account.id), ("partner_id", "=", partner.id)], limit=1
        )
        error = None
        if request.httprequest.method == "POST":
            try:
                vals = {
                    "threshold": float(threshold or 0),
                    "channel": channel if channel in ("email", "sms") else "email",
                    "active": bool(active),
                }
                if vals["channel"] == "sms" and not partner.phone:
                    raise ValidationError(request.env._("Add a phone number first."))
                if subscription:
                    subscription.write(vals)
                else:
                    Subscription.create(
                        {**vals, "account_id": account.id, "partner_id": partner.id}
                    )
                return request.redirect(f"/my/meters/{meter_id}?message=alert_saved")
            except (ValidationError, UserError) as exc:
                error = exc.args[0] if exc.args else str(exc)
            except ValueError:
                error = request.env._("Enter the threshold as a number.")
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "meter": meter_sudo,
                "account": account,
                "subscription": subscription,
                "error": error,
                "page_name": "prepaid_alerts",
            }
        )
        return request.render("prepaid_portal.portal_meter_alerts", values)

    # === T4 RECHARGE === #
    def _prepaid_check_amount(self, meter_sudo, amount):
        """The amount as a float rounded to the currency, or raise ValidationError."""
        company = meter_sudo.company_id
        currency = meter_sudo.account_id.currency_id or company.currency_id
        try:
            value = float_round(float(amount), precision_rounding=currency.rounding)
        except (TypeError, ValueError) as exc:
            raise ValidationError(request.env._("Enter an amount.")) from exc
        if not company.prepaid_recharge_min <= value <= company.prepaid_recharge_max:
            raise ValidationError(
                request.env._(
                    "A recharge is between %(low)s and %(high)s.",
                    low=format_amount(request.env, company.prepaid_recharge_min, currency),
                    high=format_amount(request.env, company.prepaid_recharge_max, currency),
                )
            )
        return value, currency

    @staticmethod
    def _prepaid_payment_options(meter_sudo, partner_sudo, value, currency, report=None):
        """``(providers, payment methods)`` (sudo) that may take this recharge: those the
        meter's company enabled for its currency and amount (payment's own filters)."""
        providers_sudo = (
            request.env["payment.provider"]
            .sudo()
            ._get_compatible_providers(
                meter_sudo.company_id.id,
                partner_sudo.id,
                value,
                currency_id=currency.id,
                report=report,
            )
        )
        payment_methods_sudo = (
            request.env["payment.method"]
            .sudo()
            ._get_compatible_payment_methods(
                providers_sudo.ids, partner_sudo.id, currency_id=currency.id, report=report
            )
        )
        return providers_sudo, payment_methods_sudo

    def _prepaid_check_provider(self, meter_sudo, partner_sudo, value, currency, kwargs):
        """Refuse a provider or payment method the meter's company did not enable for this
        currency and amount (a request naming another company's provider, or one that does
        not take the account's currency): nothing is created, nothing charged."""
        providers_sudo, methods_sudo = self._prepaid_payment_options(
            meter_sudo, partner_sudo, value, currency
        )
        provider_id = kwargs.get("provider_id")
        method_id = kwargs.get("payment_method_id")
        if provider_id not in providers_sudo.ids or (
            kwargs.get("flow") != "token" and method_id not in methods_sudo.ids
        ):
            raise ValidationError(
                request.env._(
                    "This payment method does not take recharges of %(company)s in "
                    "%(currency)s. Choose another one, or recharge at the desk.",
                    company=meter_sudo.company_id.name,
                    currency=currency.name,
                )
            )

    def _prepaid_payer_tokens(self, providers_sudo):
        """The saved payment methods offered on the recharge page: the logged-in user's own
        only; none to an anonymous QR visitor (the tenant's cards are not theirs)."""
        if request.env.user._is_public():
            return request.env["payment.token"].sudo().browse()
        partner = request.env.user.partner_id
        return (
            request.env["payment.token"]
            .sudo()
            ._get_available_tokens(providers_sudo.ids, partner.id)
        )

    def _prepaid_check_payment_method(self, kwargs):
        """Refuse a saved payment method (token) that is not the logged-in user's own, and
        never save an anonymous visitor's card (it would become the tenant's): payment's own
        check compares the token with the paying partner, which is the tenant for an
        anonymous visitor."""
        user = request.env.user
        if kwargs.get("flow") == "token" or kwargs.get("token_id"):
            token_sudo = request.env["payment.token"].sudo().browse(kwargs.get("token_id"))
            owner = user.partner_id.commercial_partner_id
            if (
                user._is_public()
                or not token_sudo.exists()
                or token_sudo.partner_id.commercial_partner_id != owner
            ):
                raise ValidationError(request.env._("This saved payment method is not yours."))
        if user._is_public():
            kwargs["tokenization_requested"] = False
            provider_sudo = (
                request.env["payment.provider"].sudo().browse(kwargs.get("provider_id")).exists()
            )
            if provider_sudo and provider_sudo._is_tokenization_required(**kwargs):
                raise ValidationError(request.env._("Log in to pay with this payment provider."))

    @http.route(["/my/meters/<int:meter_id>/recharge"], type="http", auth="public", website=True)
    def prepaid_meter_recharge(self, meter_id, amount=None, **kw):
        meter_sudo, owner, response = self._prepaid_meter_page(meter_id, f"/my/meters/{meter_id}")
        if response:
            return response
        account = meter_sudo.account_id
        if not account or account.state != "open":
            return request.redirect(f"/my/meters/{meter_id}?error=no_account")
        try:
            value, currency = self._prepaid_check_amount(meter_sudo, amount)
        except ValidationError as exc:
            values = self._prepaid_meter_values(meter_sudo, owner, error_text=exc.args[0])
            return request.render("prepaid_portal.portal_meter_page", values)
        partner_sudo = self._prepaid_partner(meter_sudo).sudo()
        company = meter_sudo.company_id
        availability_report = {}
        providers_sudo, payment_methods_sudo = self._prepaid_payment_options(
            meter_sudo, partner_sudo, value, currency, report=availability_report
        )
        tokens_sudo = self._prepaid_payer_tokens(providers_sudo)
        public = request.env.user._is_public()
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "meter": meter_sudo,
                "account": account,
                "page_name": "prepaid_recharge",
                "company_mismatch": not PaymentPortal._can_partner_pay_in_company(
                    partner_sudo, company
                ),
                "expected_company": company,
                # an anonymous visitor's card is never saved on the tenant's contact
                "show_tokenize_input_mapping": dict.fromkeys(providers_sudo.ids, False)
                if public
                else self._compute_show_tokenize_input_mapping(providers_sudo),
                "amount": value,
                "currency": currency,
                "partner_id": partner_sudo.id,
                "providers_sudo": providers_sudo,
                "payment_methods_sudo": payment_methods_sudo,
                "tokens_sudo": tokens_sudo,
                "availability_report": availability_report,
                "transaction_route": f"/my/meters/{meter_id}/recharge/transaction",
                "landing_route": f"/my/meters/{meter_id}",
                "access_token": payment_utils.generate_access_token(
                    partner_sudo.id, value, currency.id, meter_sudo.id
                ),
            }
        )
        return request.render("prepaid_portal.portal_meter_recharge", values)

    @http.route("/my/meters/<int:meter_id>/recharge/transaction", type="jsonrpc", auth="public")
    def prepaid_meter_recharge_transaction(self, meter_id, amount, access_token, **kwargs):
        """Create the online recharge (meter and account fixed here, R5) and its draft
        transaction; return the processing values for the payment form."""
        try:
            meter_sudo, owner = self._prepaid_meter_access(meter_id)
        except (AccessError, MissingError) as exc:
            raise ValidationError(request.env._("The access token is invalid.")) from exc
        if self._prepaid_needs_login(meter_sudo, owner):
            raise ValidationError(request.env._("Log in to recharge this meter."))
        account = meter_sudo.account_id
        if not account or account.state != "open":
            raise ValidationError(request.env._("This meter has no open prepaid account."))
        value, currency = self._prepaid_check_amount(meter_sudo, amount)
        partner_sudo = self._prepaid_partner(meter_sudo).sudo()
        if not payment_utils.check_access_token(
            access_token, partner_sudo.id, value, currency.id, meter_sudo.id
        ):
            raise ValidationError(request.env._("The access token is invalid."))
        self._validate_transaction_kwargs(kwargs)
        self._prepaid_check_payment_method(kwargs)
        self._prepaid_check_provider(meter_sudo, partner_sudo, value, currency, kwargs)
        kwargs["landing_route"] = f"/my/meters/{meter_id}"  # never where the client says
        recharge = (
            request.env["prepaid.online.recharge"]
            .sudo()
            .create(
                {
                    "name": "/",
                    "meter_id": meter_sudo.id,
                    "account_id": account.id,
                    "partner_id": partner_sudo.id,
                    "amount": value,
                    "currency_id": currency.id,
                }
            )
        )
        tx_sudo = self._create_transaction(
            amount=value,
            currency_id=currency.id,
            partner_id=partner_sudo.id,
            custom_create_values={"prepaid_recharge_id": recharge.id},
            **kwargs,
        )
        recharge.write({"transaction_id": tx_sudo.id, "name": tx_sudo.reference})
        return tx_sudo._get_processing_values()

    # === RECEIPT (T4) === #
    @http.route(
        ["/my/meters/<int:meter_id>/receipt/<int:recharge_id>"],
        type="http",
        auth="public",
        website=True,
    )
    def prepaid_recharge_receipt(self, meter_id, recharge_id, **kw):
        meter_sudo, _owner, response = self._prepaid_meter_page(meter_id, f"/my/meters/{meter_id}")
        if response:
            return response
        recharge = request.env["prepaid.online.recharge"].sudo().browse(recharge_id).exists()
        if not recharge or recharge.meter_id != meter_sudo or recharge.kind != "recharge":
            return request.redirect("/my")
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "meter": meter_sudo,
                "recharge": recharge,
                "credits": self._prepaid_visible_credits(meter_sudo, recharge.line_ids),
                "page_name": "prepaid_receipt",
            }
        )
        return request.render("prepaid_portal.portal_recharge_receipt", values)
