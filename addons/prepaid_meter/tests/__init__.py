from . import test_meter
from . import test_tenancy
from . import test_replace
from . import test_reading
from . import test_security
