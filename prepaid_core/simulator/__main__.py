"""``python -m prepaid_core.simulator``: see ``prepaid_core.simulator.cli``."""

import sys

from prepaid_core.simulator.cli import main

sys.exit(main())
