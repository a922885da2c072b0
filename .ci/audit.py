"""`make audit`: known vulnerabilities of every release in requirements.lock.

Runs pip-audit over the lock file, which `make install` installs from: every dependency,
direct or not, at its exact version, so what is audited is what is installed, with no
resolution and nothing installed for the audit. A local version label (torch's ``+cpu``) is
dropped first: the vulnerability database knows the public release (2.13.0), not the build.
Exit codes:

- 0: no known vulnerability, or the vulnerability database could not be reached or knew none
  of the locked releases (then it says so plainly: nothing was checked), so CI without a
  network does not fail on it;
- 1: vulnerabilities found; they are listed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

# pip-audit's default vulnerability service: PyPI's JSON API, which carries each release's
# known vulnerabilities (from the OSV database).
SERVICE = "https://pypi.org/pypi/pip/json"
LOCK = Path(__file__).resolve().parent.parent / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\+]+)(\+\S+)?", re.MULTILINE)
UNREACHABLE = "could not reach the vulnerability database; nothing was checked"
NETWORK_ERRORS = (
    "ConnectionError",
    "Max retries exceeded",
    "Name or service not known",
    "Temporary failure in name resolution",
    "timed out",
    "ProxyError",
    "Connection refused",
)


def reachable(timeout: float) -> str | None:
    """None when the service answers, else why not."""
    try:
        with urllib.request.urlopen(SERVICE, timeout=timeout) as response:
            response.read(1)
    except Exception as e:  # any failure means: nothing can be checked
        return f"{type(e).__name__}: {e}"
    return None


def report(audit: dict) -> int:
    """Print what was found; 1 when a known vulnerability was found, else 0."""
    dependencies = audit.get("dependencies", [])
    checked = [d for d in dependencies if "skip_reason" not in d]
    skipped = [d for d in dependencies if "skip_reason" in d and d["name"] != "triage"]
    if not checked:
        # A mirror or proxy that answers but knows no release is no database at all.
        print(f"{UNREACHABLE} (the service knew none of the {len(skipped)} locked releases)")
        return 0
    vulnerable = [(d, v) for d in checked for v in d.get("vulns", [])]
    for dependency, vuln in vulnerable:
        fixes = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
        print(f"{dependency['name']}=={dependency['version']}  {vuln['id']}  fixed in: {fixes}")
        if vuln.get("description"):
            print(f"    {vuln['description'].strip().splitlines()[0][:200]}")
    print(
        f"checked {len(checked)} locked releases, {len(vulnerable)} known vulnerabilities"
        + (f"; {len(skipped)} not checked: " + ", ".join(d["name"] for d in skipped)
           if skipped else "")
    )  # fmt: skip
    return 1 if vulnerable else 0


def pins(lock: str) -> list[str]:
    """``name==version`` for every release in the lock file, local labels (``+cpu``) dropped."""
    return [f"{name}=={version}" for name, version, _ in PIN.findall(lock)]


def main() -> int:
    timeout = float(os.environ.get("TRIAGE_AUDIT_TIMEOUT", "15"))
    locked = pins(LOCK.read_text(encoding="utf-8"))
    if not locked:
        print(f"{LOCK.name} lists no release; run `make lock`")
        return 2
    why = reachable(timeout)
    if why is not None:
        print(f"{UNREACHABLE} ({SERVICE}: {why})")
        return 0
    with tempfile.TemporaryDirectory() as folder:
        requirements = Path(folder) / "requirements.txt"
        requirements.write_text("\n".join(locked) + "\n", encoding="utf-8")
        # Exact pins, no resolution: --no-deps and --disable-pip audit the list as it is.
        command = [sys.executable, "-m", "pip_audit", "-r", str(requirements), "--no-deps",
                   "--disable-pip", "--progress-spinner", "off", "--timeout", str(int(timeout)),
                   "--desc", "on", "--format", "json"]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 and any(m in result.stderr for m in NETWORK_ERRORS):
        print(f"{UNREACHABLE} (pip-audit lost the connection midway)")
        return 0
    try:
        audit = json.loads(result.stdout)
    except json.JSONDecodeError:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        print(f"pip-audit failed (exit {result.returncode}); see above")
        return result.returncode or 2
    return report(audit)


if __name__ == "__main__":
    sys.exit(main())
