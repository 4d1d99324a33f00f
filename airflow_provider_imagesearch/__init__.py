"""Apache Airflow provider for the Huawei Cloud ImageSearch service.

Kept import-free on purpose: DAG files import operators and sensors from their own modules, and this
package must not drag in hooks, HTTP clients or pandas at DAG-parse time.
"""

from __future__ import annotations

__version__ = "0.1.0"

#: Connection id used when none is given.
DEFAULT_CONN_ID = "imagesearch_default"
