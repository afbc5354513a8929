"""Files a Locust process needs: the generated locustfile and the 0600 auth-headers file.

Used by the probe (master machine) and by ``crm-audit load-worker`` (any machine), so both
derive the same locustfile from the same profile; each obtains its own tokens.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from crm_audit.core.profile import Profile
from crm_audit.core.target import Target

from .cluster import write_secret_file
from .locustfile import mix_digest, render_locustfile
from .mix import LoadTask, task_mix, task_rows
from .options import LoadOptions


@dataclass
class Prepared:
    directory: Path
    locustfile: Path
    headers_file: Path
    verify: bool | str
    tasks: list[LoadTask]
    digest: str

    def remove(self) -> None:
        """Delete the directory with the headers file (tokens) and the locustfile."""
        shutil.rmtree(self.directory, ignore_errors=True)


def prepare(profile: Profile, target: Target, opts: LoadOptions, parent: Path | None = None) -> Prepared:
    """Render the locustfile and write each account's auth headers (0600) into a fresh temp dir."""
    tasks = task_mix(profile, opts.tasks)
    rows = task_rows(tasks)
    host = profile.target.base_url
    directory = Path(tempfile.mkdtemp(prefix="crm-audit-load-", dir=str(parent) if parent else None))
    try:
        headers = {}
        for acct in sorted({t.account for t in tasks if t.account}):
            headers[acct] = target.auth_headers(acct)
        headers_file = directory / "headers.json"
        write_secret_file(headers_file, headers)
        locustfile = directory / "crm_audit_locustfile.py"
        locustfile.write_text(render_locustfile(
            host, rows, think_s=opts.think_time_s, timeout_s=opts.timeout_s,
            hard_stop_s=opts.max_total_s + 10, report_interval_s=opts.report_interval_s), encoding="utf-8")
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    verify: bool | str = target.verify
    return Prepared(directory, locustfile, headers_file, verify, tasks, mix_digest(host, rows))
