#!/usr/bin/env python3
"""Pages of a GitHub-like `/search/repositories` API as NDJSON, one file per
page, as a paginated fetch leaves them: a repository may appear on two pages
(it changed between requests: the later `updated_at` wins), the last page
has no `topics` key at all, and one line is cut off.

    python3 generate.py OUT_DIR [PAGES]      default: 40 pages of 30 repositories
"""
import json
import os
import random
import sys
from datetime import datetime, timedelta, timezone

out, pages = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 40
rng = random.Random(7)
languages = ["Rust", "Python", "Go", "TypeScript", "C++", None]
end = datetime(2026, 11, 20, tzinfo=timezone.utc)
repo_id = 0
os.makedirs(out, exist_ok=True)
for page in range(1, pages + 1):
    lines = []
    for _ in range(30):
        # One in ten is a repository already fetched, updated since.
        if repo_id > 30 and rng.random() < 0.1:
            rid = rng.randrange(1, repo_id)
        else:
            repo_id += 1
            rid = repo_id
        item = {
            "id": rid,
            "full_name": f"org{rid % 97}/repo{rid}",
            "language": languages[rid % len(languages)],
            "stargazers_count": (rid * 7919) % 5000 + rng.randrange(0, 50),
            "updated_at": (end - timedelta(hours=rng.randrange(0, 24 * 200))).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if page < pages:
            item["topics"] = ",".join(sorted(rng.sample(["cli", "etl", "web", "db", "ml"], 2)))
        lines.append(json.dumps(item))
    if page == 3:
        lines[5] = lines[5][:40]  # cut off mid-object
    with open(os.path.join(out, f"page-{page:03}.ndjson"), "w") as f:
        f.write("\n".join(lines) + "\n")
print(f"{pages} pages, {repo_id} repositories -> {out}")
