"""`cfbot demo` with piped input: an incident channel shown in the console, paging and the status page
against the demo's local stand-ins, a second person approving the public update; the run's temporary
folder is gone when the demo ends."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.demo.test_demo_console import leftovers
from tests.platform.test_cli import CFBOT


async def test_demo_incident_with_paging_and_status_page(tmp_path: Path) -> None:
    script = "\n".join([
        "/cf incident declare sev1 Editor is down",
        "/in editor",
        "/cf page primary",
        "/cf statuspage open --components editor,api",
        "/as arjun",
        "1",  # Approve: the newest message's buttons are 1, 2 (the pinned summary's are 1.1-1.3 now)
        "/as olivia",
        "/cf incident resolve",
        "",
    ])
    proc = await asyncio.create_subprocess_exec(
        CFBOT, "demo", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    out, err = await asyncio.wait_for(proc.communicate(script.encode()), 90)
    text = out.decode()
    assert proc.returncode == 0, err.decode()
    assert "+ channel #inc-" in text and "📌 pinned in #inc-" in text
    assert "[1] Run triage" in text and "[3] Update status page (approval)" in text
    assert "Paged Primary On-call (critical)" in text and "cf-inc-1-primary" in text
    assert "[1] Approve   [2] Deny   (message 2:" in text and "(arjun clicked Approve — 2.1)" in text
    assert "public incident https://stspg.io/" in text
    assert "INC-1 resolved" in text
    assert "Traceback" not in text + err.decode()
    assert leftovers(tmp_path) == []
