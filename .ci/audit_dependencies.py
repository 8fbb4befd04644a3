"""CI's dependency audit: pip-audit on requirements.txt.

A known vulnerability fails the build (exit 1). When the vulnerability
service cannot be reached (no network, or a mirror that does not answer
PyPI's JSON API, in which case pip-audit skips every package), the audit
proves nothing: it says so loudly and lets the build go on, so CI does not
depend on a third party's uptime.

    .venv/bin/python .ci/audit_dependencies.py [--report FILE]

``--report`` reads an existing ``pip-audit -f json`` report instead of
running pip-audit (to check this verdict logic).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_pip_audit() -> tuple[dict | None, str]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        result = subprocess.run(
            [str(Path(sys.executable).parent / "pip-audit"), "-r", "requirements.txt",
             "--progress-spinner", "off", "-f", "json", "-o", str(report)],
            cwd=ROOT, capture_output=True, text=True, timeout=600)
        data = json.loads(report.read_text()) if report.exists() and report.stat().st_size else None
        return data, result.stderr


def verdict(data: dict | None, stderr: str = "") -> int:
    if data is None:
        print("WARNING: dependency audit could not run (vulnerability service unreachable?):",
              stderr.strip()[-500:] or "no report", sep="\n")
        return 0
    deps = data.get("dependencies", [])
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if d.get("skip_reason")]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            print(f"VULNERABLE: {dep['name']} {dep.get('version', '')}: {vuln.get('id')} "
                  f"(fixed in {fixes})")
    if vulnerable:
        return 1
    if deps and len(skipped) == len(deps):
        print(f"WARNING: dependency audit skipped all {len(deps)} packages "
              "(the PyPI vulnerability service was not reachable); nothing was checked")
        return 0
    for dep in skipped:
        print(f"WARNING: not audited: {dep['skip_reason']}")
    print(f"dependency audit: {len(deps) - len(skipped)} packages checked, "
          "no known vulnerabilities")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--report":
        return verdict(json.loads(Path(argv[1]).read_text()))
    try:
        data, stderr = run_pip_audit()
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        data, stderr = None, repr(exc)
    return verdict(data, stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
