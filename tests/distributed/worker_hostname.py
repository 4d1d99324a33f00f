"""``[core] hostname_callable`` for the test's Celery workers: both run on this machine, so each reports
the name the test gave it (``IMAGESEARCH_WORKER_HOSTNAME``) on the task instances it runs."""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("IMAGESEARCH_WORKER_HOSTNAME") or socket.getfqdn()
