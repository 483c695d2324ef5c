#!/usr/bin/env python3
"""Viewing logs of a TV service as an Elasticsearch export leaves them:
gzipped files of hits, one JSON object per line, the record nested in
`_source`. A few hits lack their contract or have negative minutes.

    python3 generate.py OUT_DIR [CONTRACTS]      default: 300 contracts, 30 days
"""
import gzip
import json
import os
import random
import sys
from datetime import datetime, timedelta, timezone

out, contracts = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300
rng = random.Random(11)
categories = ["news", "sport", "film", "kids", "docs"]
end = datetime(2026, 11, 20, tzinfo=timezone.utc)
os.makedirs(out, exist_ok=True)
hits = 0
for day in range(30):
    start = end - timedelta(days=30 - day)
    lines = []
    for c in range(1, contracts + 1):
        # Heavy, regular and light viewers, each with a favourite category.
        sessions = [6, 2, 0][c % 3] + rng.randrange(0, 2)
        for _ in range(sessions):
            hits += 1
            category = categories[c % 5] if rng.random() < 0.6 else rng.choice(categories)
            record = {
                "contract_id": f"C{c:05}",
                "category": category,
                "minutes": rng.randrange(5, 120),
                "started_at": (start + timedelta(minutes=rng.randrange(0, 1440))).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            if hits % 997 == 0:
                del record["contract_id"]
            if hits % 1499 == 0:
                record["minutes"] = -record["minutes"]
            lines.append(json.dumps({"_index": "views", "_id": f"h{hits}", "_source": record}))
    with gzip.open(os.path.join(out, f"hits-{day:02}.json.gz"), "wt") as f:
        f.write("\n".join(lines) + "\n")
print(f"{hits} hits of {contracts} contracts -> {out}")
