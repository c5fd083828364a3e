from . import test_command, test_reconcile
