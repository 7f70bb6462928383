#!/usr/bin/env python3
"""Instructions per request from a callgrind dump, by crate (see instructions.sh).

    instructions_by_crate.py FILE REQUESTS           # the table
    instructions_by_crate.py --total FILE REQUESTS   # only the total per request
"""
import collections
import re
import subprocess
import sys


def self_costs(path):
    """(function key, self instructions) from callgrind_annotate's function list."""
    out = subprocess.run(
        ["callgrind_annotate", "--threshold=100", "--auto=no", path],
        capture_output=True, text=True, check=True,
    ).stdout
    started = False
    for line in out.split("\n"):
        if "file:function" in line:
            started = True
            continue
        if not started:
            continue
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*)$", line)
        if m:
            yield m.group(2), int(m.group(1).replace(",", ""))


def group(key):
    source = key.split(":", 1)[0]
    function = key.split(":", 1)[1] if ":" in key else key
    if "malloc" in source or "arena.c" in source:
        return "libc malloc/free"
    if "memmove" in source or "memcpy" in source or "memset" in source:
        return "libc memcpy/memset"
    if source.startswith("./") or "libc.so" in key:
        return "libc, other"
    m = re.search(r"(?:^|/)crates/([^/]+)/src/", source)
    if m:
        return m.group(1)
    m = re.search(r"/src/index\.crates\.io-[^/]+/([^/]+?)-\d+\.\d+\.\d+[^/]*/", source)
    if m:
        return m.group(1)
    if "/rustc/" in source or "/rust/deps/" in source:
        # std inlined into a crate's function counts for that crate.
        m = re.search(r"\b(hyper_util|hyper|tokio|http_body_util|http|bytes|ancm_front|"
                      r"ancm_hosting|ancm_protocol|iis_integration|ancm)::", function)
        if m and m.group(1) == "ancm":
            # The runtime's loop is inlined into the gateway's main.
            return "ancm (the gateway, with the runtime loop inlined)"
        return m.group(1).replace("_", "-") if m else "std (not inlined)"
    if source.endswith(".rs"):
        return "ancm (the gateway)"
    if "nginx" in key or source == "???":
        return "nginx"
    return "other"


def main():
    args = sys.argv[1:]
    total_only = args[:1] == ["--total"]
    if total_only:
        args = args[1:]
    path, requests = args[0], int(args[1])
    groups = collections.Counter()
    total = 0
    for key, cost in self_costs(path):
        groups[group(key)] += cost
        total += cost
    if total_only:
        print(total // max(requests, 1))
        return
    print(f"{'per request':>12}  {'share':>6}  part")
    for name, cost in groups.most_common():
        if cost / requests >= 1:
            print(f"{cost / requests:12.0f}  {100 * cost / total:5.1f}%  {name}")
    print(f"{total / requests:12.0f}  100.0%  total ({requests} requests)")


if __name__ == "__main__":
    main()
