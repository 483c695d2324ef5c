#!/usr/bin/env python3
"""Checks the relative links of the repository's Markdown: README.md and docs/*.md.

    python3 ci/check-links.py [FILE.md ...]

Every link that is not absolute (no scheme such as `https:`) must name a file
or directory inside the repository, and its `#anchor`, if any, must be the
slug of a heading of the target Markdown file (or of the same file for a bare
`#anchor`), made as GitHub makes it: lower case, punctuation removed, spaces
turned into `-`, `-1`, `-2`, ... added to repeated headings. Links inside code
(fenced blocks and `inline code`) are not links and are skipped.

Prints each broken link as `file:line: link` and exits 1 if there is any.
Python 3 standard library only.
"""

import os
import re
import sys

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# [text](target "title") and ![alt](target); the text may hold one level of brackets.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
# [label]: target, a reference definition.
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")


def lines_outside_code(path):
    """(line number, text) of each line not in a fenced code block."""
    fence = None
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            opened = FENCE.match(line)
            if fence is None and opened:
                fence = opened.group(1)
                continue
            if fence is not None:
                if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                    fence = None
                continue
            yield number, line.rstrip("\n")


def slug(heading):
    """GitHub's anchor for a heading's text."""
    text = INLINE_CODE.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link shows its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # punctuation; `_` is a word character and stays
    return text.replace(" ", "-")


_ANCHORS = {}


def anchors(path):
    """Every anchor GitHub makes for the headings of a Markdown file."""
    cache = _ANCHORS
    if path not in cache:
        seen = {}
        found = set()
        for _, line in lines_outside_code(path):
            m = HEADING.match(line)
            if not m:
                continue
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else "%s-%d" % (base, n))
        cache[path] = found
    return cache[path]


def links(path):
    """(line number, target) of each link outside code."""
    for number, line in lines_outside_code(path):
        text = INLINE_CODE.sub("", line)
        for m in LINK.finditer(text):
            yield number, m.group(1).strip("<>")
        m = REFERENCE.match(text)
        if m:
            yield number, m.group(1).strip("<>")


def broken(path, target):
    """Why `target`, linked from `path`, does not resolve; None when it does."""
    if SCHEME.match(target) or target.startswith("//"):
        return None  # absolute: not this script's business
    file_part, _, anchor = target.partition("#")
    file_part = file_part.split("?", 1)[0]
    if file_part:
        if file_part.startswith("/"):
            resolved = os.path.join(ROOT, file_part.lstrip("/"))
        else:
            resolved = os.path.join(os.path.dirname(path), file_part)
        resolved = os.path.realpath(resolved)
        if os.path.commonpath([resolved, ROOT]) != ROOT:
            return "outside the repository"
        if not os.path.exists(resolved):
            return "no such file"
    else:
        resolved = path
    if anchor:
        if not resolved.endswith(".md") or os.path.isdir(resolved):
            return None  # anchors of other files (code lines, ...) are not checked
        if anchor not in anchors(resolved):
            return "no heading with anchor #" + anchor
    return None


def default_files():
    files = [os.path.join(ROOT, "README.md")]
    docs = os.path.join(ROOT, "docs")
    if os.path.isdir(docs):
        files += sorted(os.path.join(docs, n) for n in os.listdir(docs) if n.endswith(".md"))
    return [f for f in files if os.path.isfile(f)]


def main(argv):
    files = [os.path.realpath(a) for a in argv] or default_files()
    problems = 0
    checked = 0
    for path in files:
        shown = os.path.relpath(path, ROOT)
        for number, target in links(path):
            checked += 1
            why = broken(path, target)
            if why:
                problems += 1
                print("%s:%d: %s" % (shown, number, target), flush=True)
                print("  %s" % why, file=sys.stderr, flush=True)
    if problems:
        print("%d broken of %d links in %d files" % (problems, checked, len(files)), file=sys.stderr)
        return 1
    print("ok: %d links in %d files" % (checked, len(files)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
