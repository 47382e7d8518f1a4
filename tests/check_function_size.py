#!/usr/bin/env python3
"""No function in launch/ longer than 80 lines, measured by clang-tidy.

usage: check_function_size.py SOURCE_DIR BUILD_DIR    (run by ctest as layering.function_size)

Runs clang-tidy's readability-function-size check (LineThreshold 80: a function is too long when
its body, from the opening brace to the closing one with blank and comment lines, spans more than
80 lines) on every .cpp file under SOURCE_DIR/launch, with the compile commands of BUILD_DIR
(compile_commands.json; the build exports it), and on the launch/ headers they include. Each
function over the limit is printed with its file, line and length, and the exit status is 1 if
there is one. clang-tidy itself failing on a file (it could not parse it) is a failure too, so a
broken setup never passes silently. Without clang-tidy the check says so on a SKIP line (for
tests/check_skips.py) and exits 77: launch/setup.sh installs it.
"""
import concurrent.futures
import glob
import os
import re
import shutil
import subprocess
import sys

LIMIT = 80
CHECK = "-*,readability-function-size"
CONFIG = "{CheckOptions: [{key: readability-function-size.LineThreshold, value: %d}]}" % LIMIT
WARNING = re.compile(r"^(.*?):(\d+):\d+: warning: function '(.*?)' exceeds")
LINES = re.compile(r"note: (\d+) lines including whitespace and comments")


def tidy(clang_tidy, build, header_filter, path):
    """(clang-tidy's exit status, its output) for one file."""
    cmd = [clang_tidy, "-p", build, "--quiet", "--checks=" + CHECK, "--config=" + CONFIG,
           "--header-filter=" + header_filter, path]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return r.returncode, r.stdout


def too_long(output, root):
    """{(file, line, function, lines)} of the functions the output reports over the limit."""
    found, current = set(), None
    for line in output.splitlines():
        m = WARNING.match(line)
        if m:
            current = (os.path.relpath(m.group(1), root), int(m.group(2)), m.group(3))
            continue
        m = LINES.search(line)
        if m and current:
            found.add(current + (int(m.group(1)),))
            current = None
    return found


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    root, build = (os.path.abspath(a) for a in sys.argv[1:])
    clang_tidy = shutil.which("clang-tidy")
    if clang_tidy is None:
        print("SKIP [command:clang-tidy]: clang-tidy is not installed (launch/setup.sh has it)")
        return 77
    if not os.path.exists(os.path.join(build, "compile_commands.json")):
        print(f"check_function_size: no compile_commands.json in {build}: configure the build "
              "with CMAKE_EXPORT_COMPILE_COMMANDS=ON (CMakeLists.txt sets it)")
        return 1
    files = sorted(glob.glob(os.path.join(root, "launch", "**", "*.cpp"), recursive=True))
    header_filter = re.escape(os.path.join(root, "launch")) + "/"
    workers = max(1, min(4, os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda f: tidy(clang_tidy, build, header_filter, f), files))
    found, failed = set(), 0
    for path, (status, output) in zip(files, results):
        found |= too_long(output, root)
        if status != 0:
            failed += 1
            print(f"clang-tidy failed on {os.path.relpath(path, root)} (exit {status}):\n{output}")
    for path, line, function, lines in sorted(found):
        print(f"{path}:{line}: {function} is {lines} lines long; split it into functions of at "
              f"most {LIMIT}")
    print(f"check_function_size: {len(files)} files of launch/ checked, {len(found)} function(s) "
          f"over {LIMIT} lines")
    return 1 if found or failed else 0


if __name__ == "__main__":
    sys.exit(main())
