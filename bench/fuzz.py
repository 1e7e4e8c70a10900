"""Every payload shape the bot accepts, fuzzed at length through the real web app: slash commands,
block_actions and view_submission payloads, app_home_opened events (all signed as Slack signs them) and the
Alertmanager webhook (with its bearer token). Each input is built by hypothesis from the real payload, with
hostile text in the fields people control and its structure damaged. An input passes when it gets no 5xx,
leaves no traceback in any log line and no live `<!channel>`-style mention or disguised link in anything the
bot sent to Slack, and `/healthz` answers after it; after each shape a normal `/cf help` must be answered.
One failing input stops the run (shrunk by hypothesis to its smallest form) and nothing is recorded.
`python -m bench fuzz [INPUTS_PER_SHAPE]` (default 1,000) reproduces this table; the suite runs 50 per shape.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from tests.hardening.fuzzing import SHAPES, Fuzzer, fuzz

RESULTS = Path(__file__).with_name("RESULTS.md")
TITLE = "## Fuzzing every payload shape"
MARK_BEGIN, MARK_END = "<!-- fuzz:begin -->", "<!-- fuzz:end -->"
DEFAULT_INPUTS = 1_000


def table(fuzzer: Fuzzer) -> list[str]:
    rows = ["| shape | inputs tried | 2xx | 4xx (by status) | 5xx | tracebacks | live mentions | then `/cf help` |",
            "|---|---|---|---|---|---|---|---|"]
    for shape in SHAPES:
        statuses = fuzzer.statuses[shape]
        ok = sum(n for status, n in statuses.items() if status < 300)
        refused = {status: n for status, n in sorted(statuses.items()) if 400 <= status < 500}
        shown = ", ".join(f"{status}: {n:,}" for status, n in refused.items()) or "none"
        rows.append(f"| {shape} | {fuzzer.tried[shape]:,} | {ok:,} | {sum(refused.values()):,} ({shown}) | 0 | 0 | 0 "
                    "| answered |")
    rows.append(f"| **all** | **{sum(fuzzer.tried.values()):,}** | | | **0** | **0** | **0** | |")
    return rows


def record(lines: list[str], results: Path = RESULTS) -> None:
    """Put the fuzzing section into bench/RESULTS.md between its markers (replaced in place; new ones go at
    the end), so that the other sections stay as they are."""
    text = results.read_text() if results.exists() else "# Benchmark results\n"
    block = "\n".join([MARK_BEGIN, TITLE, "", *lines, MARK_END])
    if MARK_BEGIN in text and MARK_END in text:
        before, rest = text.split(MARK_BEGIN, 1)
        text = before + block + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    results.write_text(text)


def main(argv: list[str]) -> int:
    inputs = int(argv[0]) if argv else DEFAULT_INPUTS
    started = time.time()

    def progress(shape: str, fuzzer: Fuzzer) -> None:
        statuses = dict(sorted(fuzzer.statuses[shape].items()))
        print(f"{shape}: {fuzzer.tried[shape]:,} inputs, statuses {statuses}, then /cf help answered "
              f"({time.time() - started:.0f} s)", flush=True)

    print(f"fuzzing {len(SHAPES)} shapes, up to {inputs:,} inputs each…", flush=True)
    with tempfile.TemporaryDirectory(prefix="cf-fuzz-") as workdir:
        fuzzer = fuzz(SHAPES, inputs, Path(workdir), report=progress)
    doc = " ".join((__doc__ or "").split())
    lines = [doc, "", f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, up to {inputs:,} inputs "
             f"per shape, {time.time() - started:.0f} s.", "", *table(fuzzer)]
    print("\n".join(lines))
    record(lines)
    print(f"recorded in {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
