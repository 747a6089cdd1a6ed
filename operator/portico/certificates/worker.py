"""A certificate worker process: one JSON job per line on stdin, one verdict per line out.

Started by `isolation.CertificateWorkers` as `python -m portico.certificates.worker`.
Before each job it caps its own CPU time (RLIMIT_CPU, from what it has used so
far: the limit counts a process's whole life), so a file that costs more than
its allowance ends the process with SIGXCPU instead of occupying a core. It
runs at a lower priority than the operator, whose event loop renews the Lease.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
from datetime import datetime
from typing import Any

from portico.certificates import wire
from portico.certificates.convert import convert_pfx, validate_tls_pair
from portico.certificates.result import CertificateVerdict

NICENESS = 10


def cap_cpu(seconds: int) -> None:
    """From now on, SIGXCPU once this job has used SECONDS of CPU (whole seconds)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = math.ceil(usage.ru_utime + usage.ru_stime)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = used + max(seconds, 1)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def run_job(job: dict[str, Any]) -> CertificateVerdict:
    blob = wire.unb64(job["blob"]) or b""
    secret = wire.unb64(job.get("secret"))
    host = job.get("host")
    now = datetime.fromisoformat(job["now"]) if job.get("now") else None
    if job["form"] == "pfx":
        return convert_pfx(blob, secret, hostname=host, now=now)
    return validate_tls_pair(blob, secret or b"", hostname=host, now=now)


def main() -> None:
    os.nice(NICENESS)
    for line in sys.stdin:
        job = json.loads(line)
        cap_cpu(int(job.get("cpu_seconds", 10)))
        try:
            answer: dict[str, Any] = wire.encode(run_job(job))
        except Exception as err:  # a bug, not the file: the type only, never its words
            answer = {"error": type(err).__name__}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
