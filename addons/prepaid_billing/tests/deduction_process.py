"""R11 test helper (not a test): the deduction run in a process of its own.

``python3 deduction_process.py -d DB --addons-path PATHS --db_app_name NAME`` loads the
registry of DB and runs ``prepaid.account._run_deductions`` on the meters given as JSON on
stdin (``{"meter_ids": [...], "batch_size": n}``), committing after each batch as the
scheduled action does; it prints ``{"charged": n}``. Connection settings come from the
command line and the ``PG*`` environment variables (never a password on the command line).
"""

import json
import sys


def main(argv):
    params = json.load(sys.stdin)
    from odoo import SUPERUSER_ID, api  # noqa: PLC0415 (Odoo is configured first)
    from odoo.modules.registry import Registry  # noqa: PLC0415
    from odoo.tools import config  # noqa: PLC0415

    config.parse_config(argv)
    registry = Registry(config["db_name"][0])
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        charged = env["prepaid.account"]._run_deductions(
            meter_ids=params["meter_ids"], batch_size=params["batch_size"], commit=True
        )
    sys.stdout.write(json.dumps({"charged": charged}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
