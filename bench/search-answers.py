#!/usr/bin/env python3
"""The first 4 pages of 26 kinds of listing and search, by `next`, one line a page (its ids).

Run it against two builds on the same seeded database (bench/search.sh's seed) and compare
the files: a change to how searches run must give the same ids.

    python3 bench/search-answers.py https://127.0.0.1:PORT TOKEN OUT.txt
"""
import json, ssl, sys, urllib.parse, urllib.request

if len(sys.argv) != 4 or sys.argv[1] in ("-h", "--help"):
    sys.exit(__doc__)
base, token, out = sys.argv[1:]
# bench/search.sh's 13 searches, the plain list, its sorts and type, and 9 more with types and orders.
KINDS = ["", "sort=name", "sort=size&order=asc", "type=pdf", "q=beach", "q=sun", "q=cafe", "q=garden+2011", "q=ch_ri",
         "q=IMG_0042", "q=zzzq", "q=trip+to+snow", "q=beach&type=video&sort=size", "q=beach&sort=size", "q=rive",
         "q=ch_20&type=video&sort=size", "q=bea&sort=name", "q=snow&order=asc&sort=name", "q=2011&type=pdf",
         "q=report&sort=size&order=asc", "q=beach&type=image", "q=ch_ri&type=video", "q=trip+to+snow&type=pdf",
         "type=video&sort=name", "type=image&sort=size", "q=sun&type=video&sort=name&order=asc"]
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
total = 0
with open(out, "w") as f:
    for kind in KINDS:
        cursor = None
        for page in range(4):
            url = f"{base}/api/assets?workspaceId=1" + (f"&{kind}" if kind else "")
            url += f"&cursor={urllib.parse.quote(cursor)}" if cursor else ""
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
            body = json.load(urllib.request.urlopen(request, context=context))
            ids = [asset["id"] for asset in body["assets"]]
            total += len(ids)
            f.write(f"{kind} page{page} {' '.join(ids)}\n")
            cursor = body.get("next")
            if not cursor:
                break
print(f"{len(KINDS)} kinds, {total} ids")
