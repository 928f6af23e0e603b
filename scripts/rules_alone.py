"""Every rule proven alone: for each rule id a test names, `pytest -k <RULE>` in a process of its
own over the unit, integration and e2e tiers, as `make test PYTEST_ARGS="-k <RULE>"` runs it (the
README's promise). A proof that passes only after other tests have run fails here.

    .venv/bin/python -m scripts.rules_alone                 every rule (slow: one pytest each)
    .venv/bin/python -m scripts.rules_alone ACC_05 NTF_01   only these

Prints a table (rule | tests selected | passed | failed | seconds); exits 1 if any rule failed.
One pytest at a time: the tests share the machine's servers, as `make test` does.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from scripts.rules import ROOT, collected, proofs

TIERS = ("tests/unit", "tests/integration", "tests/e2e")
# Far above the slowest rule (the e2e system and the demo's six processes start for it).
TIMEOUT = 1800.0


@dataclass(frozen=True)
class Run:
    rule: str
    selected: int
    passed: int
    failed: int
    seconds: float
    failures: tuple[str, ...]  # the tests that failed, or why nothing could be counted

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.selected > 0


def run(rule: str) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={junit}",
            "-k",
            rule,
            *TIERS,
        ]
        started = time.monotonic()
        try:
            result = subprocess.run(
                command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            return Run(rule, 0, 0, 1, time.monotonic() - started, (f"over {TIMEOUT:.0f} s",))
        seconds = time.monotonic() - started
        if not junit.exists():
            return Run(rule, 0, 0, 1, seconds, (f"pytest exited {result.returncode}",))
        return counted(rule, junit, seconds, result.returncode)


def counted(rule: str, junit: Path, seconds: float, returncode: int) -> Run:
    """The run's counts from its JUnit report. A rule whose tests all pass but whose pytest
    still failed (an error in a fixture's teardown, nothing selected) counts one failure."""
    selected = passed = 0
    failures: list[str] = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        selected += 1
        outcomes = {child.tag for child in case}
        if outcomes & {"failure", "error"}:
            failures.append(f"{case.get('classname', '')}::{case.get('name', '')}")
        elif "skipped" not in outcomes:
            passed += 1
    failed = len(failures)
    if returncode != 0 and failed == 0:
        failed, failures = 1, [f"pytest exited {returncode}"]
    return Run(rule, selected, passed, failed, seconds, tuple(failures))


def table(runs: list[Run]) -> str:
    lines = [
        "| rule | tests selected | passed | failed | seconds |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r.rule} | {r.selected} | {r.passed} | {r.failed} | {r.seconds:.0f} |" for r in runs
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    named = sorted(proofs(collected(*TIERS)))
    rules = [r for r in named if r in argv] if argv else named
    unknown = sorted(set(argv) - set(named))
    if unknown:
        print(f"no test under {', '.join(TIERS)} names {', '.join(unknown)}", file=sys.stderr)
        return 2
    runs: list[Run] = []
    started = time.monotonic()
    for i, rule in enumerate(rules, 1):
        print(f"[{i}/{len(rules)}] {rule} ...", end=" ", flush=True)
        done = run(rule)
        runs.append(done)
        verdict = "ok" if done.ok else "FAILED"
        print(
            f"{verdict}: {done.passed} passed, {done.failed} failed of {done.selected}"
            f" in {done.seconds:.0f} s (total {time.monotonic() - started:.0f} s)",
            flush=True,
        )
        for failure in done.failures:
            print(f"      {failure}", flush=True)
    print()
    print(table(runs))
    failed = [r.rule for r in runs if not r.ok]
    print(
        f"\n{len(runs) - len(failed)} of {len(runs)} rules pass alone"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
