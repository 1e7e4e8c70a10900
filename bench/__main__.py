"""Run every benchmark, print the figures and write them to bench/RESULTS.md."""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from bench import ack, memory, status

RESULTS = Path(__file__).with_name("RESULTS.md")


async def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="cf-bench-"))
    sections = []
    started = time.time()
    print("ack latency (cf vs bare Bolt)…", flush=True)
    sections.append(("Acknowledgement latency", ack.__doc__ or "", ack.report(await ack.measure(workdir))))
    print("status at 50 and 1,000 extra pods…", flush=True)
    sections.append(("`/cf status` at scale", status.__doc__ or "", status.report(await status.measure(workdir))))
    print("memory…", flush=True)
    sections.append(("Memory", memory.__doc__ or "", memory.report(await memory.measure(workdir))))
    header = [
        "# Benchmark results",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; `make bench` reproduces them "
        f"({time.time() - started:.0f} s). The load generator and the Slack simulator share this process, "
        "so the absolute figures include their cost; the ratios compare like with like.",
    ]
    body = []
    for title, doc, lines in sections:
        body += ["", f"## {title}", "", " ".join(doc.split()), "", *lines]
    text = "\n".join(header + body) + "\n"
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
