"""Amounts in the texts a tenant receives are formatted by Odoo in the account's currency:
a landlord in CNY sends ``¥ 40.00``, never a bare ``40.00`` or a symbol written by hand."""

from odoo.tests import tagged
from odoo.tools.convert import convert_file

from .common import PrepaidBillingCommon
from .test_token_receipt import TokenCreditMixin

YUAN_40 = "¥\N{NO-BREAK SPACE}40.00"


@tagged("post_install", "-at_install")
class TestMoneyFormat(TokenCreditMixin, PrepaidBillingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cny = cls.env.ref("base.CNY")
        cny.active = True
        cls.env.company.currency_id = cny

    def test_token_sms_shows_yuan(self):
        line = self.account._recharge("40", memo="desk")[:1]
        keypad = self._sell_credit(line, self.meter, "keypad")
        self.assertIn(
            f"Meter {self.meter.name}: {YUAN_40} credit. Token ", keypad._token_sms_text()
        )
        card = self._credit(self.meter, "40", keypad.origin, "card", reference="TID-2")
        self.assertIn(f"{YUAN_40} credit ready to be written", card._token_sms_text())

    def test_notice_mail_shows_yuan(self):
        self.account._recharge("40", memo="desk")
        # the template as the add-on ships it (noupdate: a database installed earlier keeps
        # the body it was installed with)
        convert_file(self.env, "prepaid_billing", "data/mail_template_data.xml", {}, "init")
        template = self.env.ref("prepaid_billing.mail_template_prepaid_notice")
        body = template._render_field("body_html", self.account.ids)[self.account.id]
        self.assertIn(f"credit\n       {YUAN_40}.", str(body))
