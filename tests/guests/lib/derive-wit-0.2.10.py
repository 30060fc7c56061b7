#!/usr/bin/env python3
"""Derive a WASI 0.2.10 WIT tree from a 0.2.12 one (for componentize-js 0.23, whose engine
exports wasi:http/incoming-handler@0.2.10 exactly and needs WIT of that version).

usage: derive-wit-0.2.10.py SRC_DIR DST_DIR

- every `@0.2.12` becomes `@0.2.10`;
- items annotated `@since(version = 0.2.11)` / `@since(version = 0.2.12)` are dropped;
- items annotated `@unstable(feature = clocks-timezone)` or
  `@unstable(feature = informational-outbound-responses)` are dropped;
- `@unstable(feature = network-error-code)` items become `@since(version = 0.2.0)` (stable).
An "item" is the line after the annotation; if it opens a `{` block, everything up to the
matching `}`. Doc comments right before a dropped item are dropped with it.
"""
import os
import re
import sys

DROP = re.compile(
    r"^\s*@(since\(version\s*=\s*0\.2\.1[12]\)"
    r"|unstable\(feature\s*=\s*(clocks-timezone|informational-outbound-responses)\))\s*$"
)
STABILISE = re.compile(r"@unstable\(feature\s*=\s*network-error-code\)")


def transform(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if DROP.match(line):
            # drop the doc comments collected just before the annotation
            while out and out[-1].lstrip().startswith("///"):
                out.pop()
            i += 1
            # skip further annotations attached to the same item
            while i < len(lines) and lines[i].lstrip().startswith("@"):
                i += 1
            depth = 0
            while i < len(lines):
                depth += lines[i].count("{") - lines[i].count("}")
                i += 1
                if depth <= 0:
                    break
            continue
        out.append(STABILISE.sub("@since(version = 0.2.0)", line))
        i += 1
    return "\n".join(out).replace("@0.2.12", "@0.2.10")


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    for root, _dirs, files in os.walk(src):
        rel = os.path.relpath(root, src)
        os.makedirs(os.path.join(dst, rel), exist_ok=True)
        for f in files:
            if not f.endswith(".wit"):
                continue
            with open(os.path.join(root, f), encoding="utf-8") as fh:
                text = fh.read()
            with open(os.path.join(dst, rel, f), "w", encoding="utf-8") as fh:
                fh.write(transform(text))


if __name__ == "__main__":
    main()
