"""The running Airflow's version, for the few tests whose expectations differ on older releases."""

from __future__ import annotations

import airflow
from packaging.version import Version

# Before 3.3, partial() fills map_index_template with None instead of the operator's own default.
PARTIAL_TAKES_OPERATOR_DEFAULTS = Version(airflow.__version__) >= Version("3.3")
