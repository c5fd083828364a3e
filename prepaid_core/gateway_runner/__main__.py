import sys

from prepaid_core.gateway_runner.cli import main

sys.exit(main())
