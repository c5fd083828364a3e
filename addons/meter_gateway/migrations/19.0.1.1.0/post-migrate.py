"""19.0.1.1.0: the companies' token vending keys are stored encrypted (G6).

Keys stored in clear by earlier versions are encrypted with the server's
``prepaid_key_secret``; without it they stay as they are and a warning (without the key)
says what to configure."""

from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    env["res.company"]._prepaid_encrypt_clear_vending_keys()
