#!/usr/bin/env python3
"""Fails the test command when a test skipped that should have run on this machine.

usage: check_skips.py CTEST_JUNIT_XML    (ctest --output-junit FILE)

A test that cannot run says why on a line "SKIP [TAG]: reason" and exits 77 (e2e scripts,
tests/e2e/common.bash) or calls GTEST_SKIP() with that text; a script that runs its other cases
prints the same line for the one it skips. TAG names what was missing, and this script checks
that independently of the test:

  root          accepted when not running as root
  netns         accepted when network namespaces cannot be made here (`ip netns add` fails)
  mount         accepted when a tmpfs cannot be mounted here
  cuda-device   accepted when this machine has no NVIDIA GPU
  module:NAME   accepted when Debian's /usr/bin/python3 cannot import NAME (torch: launch/setup.sh
                does not install it, bench/compare.sh does)
  data, command:NAME, slurmd
                never accepted: tests/run.sh ran launch/setup.sh, which installs the datasets,
                the programs and SLURM, so a test that says they are missing found a broken install
A skipped test without a tagged line is a failure too. DISTVAE_ALLOW_SKIP="name ..." accepts the
skips of the tests named (say why where you set it).

Prints one line per skip, accepted or not; exits 1 when any was not accepted.
"""
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

TAGGED = re.compile(r"^SKIP \[([^\]]+)\]: (.*)$", re.M)


def runs(cmd):
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def netns_possible():
    if os.geteuid() != 0:
        return False
    name = f"distvae-skipcheck-{os.getpid()}"
    if not runs(["ip", "netns", "add", name]):
        return False
    runs(["ip", "netns", "del", name])
    return True


def tmpfs_mountable():
    if os.geteuid() != 0:
        return False
    with tempfile.TemporaryDirectory() as d:
        if not runs(["mount", "-t", "tmpfs", "-o", "size=1m", "distvae-skipcheck", d]):
            return False
        runs(["umount", d])
        return True


def has_gpu():
    try:
        return runs(["nvidia-smi", "-L"])
    except FileNotFoundError:
        return False


def judge(tag):
    """(accepted, why) for a skip with this tag on this machine."""
    if tag == "root":
        root = os.geteuid() == 0
        return (not root, "running as root here" if root else "not root here")
    if tag == "netns":
        ok = netns_possible()
        return (not ok, "network namespaces can be made here" if ok else "no network namespaces here")
    if tag == "mount":
        ok = tmpfs_mountable()
        return (not ok, "a tmpfs can be mounted here" if ok else "cannot mount here")
    if tag == "cuda-device":
        gpu = has_gpu()
        return (not gpu, "nvidia-smi lists a GPU here" if gpu else "no GPU here")
    if tag.startswith("module:"):
        name = tag.split(":", 1)[1]
        ok = runs(["/usr/bin/python3", "-c", f"import {name}"])
        return (not ok, f"/usr/bin/python3 imports {name} here" if ok else f"no {name} module here")
    if tag == "data" or tag == "slurmd" or tag.startswith("command:"):
        return (False, "launch/setup.sh installs it, so this test should have run")
    return (False, f"unknown skip tag [{tag}]")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    allowed = set(os.environ.get("DISTVAE_ALLOW_SKIP", "").split())
    verdicts = {}
    bad = 0
    cases = list(ET.parse(sys.argv[1]).getroot().iter("testcase"))
    for case in cases:
        name = case.get("name")
        out = case.findtext("system-out") or ""
        skipped = case.find("skipped") is not None
        tagged = TAGGED.findall(out)
        if skipped and not tagged:
            print(f"REQUIRED TEST SKIPPED: {name}: it skipped without a 'SKIP [TAG]: reason' line")
            bad += 1
        for tag, reason in tagged:
            what = name if skipped else f"{name} (one case; the rest ran)"
            if tag not in verdicts:
                verdicts[tag] = judge(tag)
            accepted, why = verdicts[tag]
            if name in allowed:
                accepted, why = True, "accepted by DISTVAE_ALLOW_SKIP"
            if accepted:
                print(f"skipped: {what}: {reason} [{tag}: {why}]")
            else:
                print(f"REQUIRED TEST SKIPPED: {what}: {reason} [{tag}: {why}]")
                bad += 1
    if bad:
        print(f"check_skips: {bad} skip(s) of tests that should run on this machine "
              "(see above; DISTVAE_ALLOW_SKIP=\"NAME ...\" accepts one on purpose)")
        return 1
    skips = sum(case.find("skipped") is not None for case in cases)
    why = ", each for a reason that holds here" if skips else ""
    print(f"check_skips: {len(cases)} tests, {skips} skipped{why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
