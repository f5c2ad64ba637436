#!/usr/bin/env python3
"""Check that #include "..." edges in bindings/ and host/ point down.

The layers (docs/internals.md, "Layers"): host/ may include anything;
bindings/init.c (the module entry point) includes every layer of
bindings/; core/ includes only core/; sync/, io/ and thread/ include core/
and themselves, never each other; the codecs (codec/: JSON) stand on core/
alone; the protocol layers (http/) stand on core/, io/ and codec/; the
database clients (db/) on core/ alone.
Nothing in bindings/ includes a file of host/. A quoted include that is
not in the tree (lua.h, a generated header) is outside the layers.
Prints "includes: OK" or each bad edge as file:line, and exits 1.
usage: scripts/check-includes.py [SOURCE_DIR]
"""
import os
import re
import sys

# layer -> the layers its files may include
ALLOWED = {
    "core": {"core"},
    "sync": {"core", "sync"},
    "io": {"core", "io"},
    "thread": {"core", "thread"},
    "codec": {"core", "codec"},
    "http": {"core", "io", "codec", "http"},
    "db": {"core", "db"},
    "init": {"core", "sync", "io", "thread", "codec", "http", "db"},
    "host": {"core", "sync", "io", "thread", "codec", "http", "db", "init",
             "host"},
}
SOURCES = (".c", ".h", ".cpp")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of(rel):
    """The layer of a path relative to the source dir, or None."""
    parts = rel.split("/")
    if parts[0] == "host":
        return "host"
    if parts[0] != "bindings":
        return None
    if len(parts) == 2:
        return "init" if parts[1] == "init.c" else "bindings/"
    return parts[1] if parts[1] in ALLOWED else "bindings/" + parts[1]


def resolve(top, rel, name):
    """The included file, relative to top, as the compiler finds it."""
    here = os.path.dirname(rel)
    for base in (here, "bindings", "host/include", "host"):
        path = os.path.normpath(os.path.join(base, name))
        if os.path.isfile(os.path.join(top, path)):
            return path
    return None


def main():
    top = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
    bad = []
    for root in ("bindings", "host"):
        for d, _, files in sorted(os.walk(os.path.join(top, root))):
            for f in sorted(files):
                if not f.endswith(SOURCES):
                    continue
                rel = os.path.relpath(os.path.join(d, f), top)
                src = layer_of(rel)
                if src not in ALLOWED:
                    bad.append("%s: not in a layer folder of bindings/" % rel)
                    continue
                with open(os.path.join(top, rel), encoding="utf-8") as fh:
                    for n, line in enumerate(fh, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        target = resolve(top, rel, m.group(1))
                        dst = layer_of(target) if target else None
                        if dst is None or dst in ALLOWED[src]:
                            continue
                        bad.append("%s:%d: includes %s: %s -> %s is not "
                                   "allowed" % (rel, n, target, src, dst))
    for b in bad:
        print("includes: " + b)
    print("includes: FAILED" if bad else "includes: OK")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
