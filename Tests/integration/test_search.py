"""GET /api/assets search, filters, sorts and cursors, and PATCH /api/assets/{assetId},
through the real stack. The corpus is Tests/fixtures/search-corpus.json, the one the
store's unit tests run (and PostgreSQL's will): its workspaces 1 and 2 become two fresh
workspaces of this run, so that other tests' uploads do not show."""
import json
import os
import random

import requests

from conftest import CERTIFICATE, Client, assert_json_error, make_token
from test_direct import images, mp4, post

CORPUS = os.path.join(os.path.dirname(__file__), "..", "fixtures", "search-corpus.json")
CONTENT = {"image/jpeg": "jpeg", "image/png": "png", "application/pdf": "pdf"}


def load_corpus():
    with open(CORPUS, encoding="utf-8") as f:
        return json.load(f)


def upload(client, workspace, name, file_type, files):
    content = mp4() if file_type == "video/mp4" else files[CONTENT[file_type]]
    r = post(client, {"file": (name, content, "application/octet-stream")}, data={"workspaceId": str(workspace)})
    assert r.status_code == 200, r.text
    asset = r.json()["asset"]
    assert asset["fileName"] == name and asset["fileType"] == file_type, asset
    return asset


def patch(client, asset_id, workspace, body, raw=None):
    return requests.patch(f"{client.base}/api/assets/{asset_id}", params={"workspaceId": workspace},
                          data=raw if raw is not None else json.dumps(body), timeout=30, verify=CERTIFICATE,
                          headers=client.headers({"Content-Type": "application/json"}))


def every_page(client, **params):
    """The file names of every page, following `next` to the end."""
    names, cursor = [], None
    for _ in range(100):
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        r = client.get("/api/assets", **query)
        assert r.status_code == 200, r.text
        body = r.json()
        names += [a["fileName"] for a in body["assets"]]
        cursor = body["next"]
        if cursor is None:
            return names
    raise AssertionError("more than 100 pages")


def seeded(base_url, secret):
    """The corpus uploaded into two fresh workspaces; (client, workspaces by corpus number)."""
    spaces = {1: random.randint(10**6, 10**9), 2: random.randint(10**6, 10**9)}
    client = Client(base_url, make_token(secret, "searcher", list(spaces.values())))
    files = images()
    for item in load_corpus()["assets"]:
        workspace = spaces[item["workspace"]]
        asset = upload(client, workspace, item["fileName"], item["fileType"], files)
        if item.get("title") or item.get("tags"):
            r = patch(client, asset["id"], workspace, {"title": item.get("title"), "tags": item.get("tags", [])})
            assert r.status_code == 200, r.text
            assert r.json()["asset"]["tags"] == item.get("tags", [])
    return client, spaces


def test_the_corpus_finds_what_it_expects(base_url, secret):
    client, spaces = seeded(base_url, secret)
    for search in load_corpus()["searches"]:
        params = {"workspaceId": spaces[search.get("workspace", 1)], "q": search["q"]}
        if search.get("type"):
            params["type"] = search["type"]
        for limit in (50, 2):
            assert every_page(client, limit=limit, **params) == search["expect"], (search, limit)
    # Sorted, and a filter without a search.
    names = sorted((a["fileName"] for a in load_corpus()["assets"] if a["workspace"] == 1),
                   key=lambda n: "".join(c.lower() if c.isascii() else c for c in n).encode())
    assert every_page(client, workspaceId=spaces[1], sort="name", limit=3) == names
    assert every_page(client, workspaceId=spaces[1], sort="name", order="desc", limit=4) == names[::-1]
    assert every_page(client, workspaceId=spaces[1], type="video") == ["clip.mp4"]
    assert every_page(client, workspaceId=spaces[1], status="pending") == []


def test_a_cursor_neither_skips_nor_repeats_while_assets_are_added(base_url, secret):
    workspace = random.randint(10**6, 10**9)
    client = Client(base_url, make_token(secret, "pager", [workspace]))
    files = images()
    before = [upload(client, workspace, f"beach_{i}.jpg", "image/jpeg", files)["id"] for i in range(7)]
    for params in ({"sort": "name"}, {}, {"q": "beach"}, {"sort": "created", "order": "asc"}):
        seen, cursor, added = [], None, 0
        while True:
            r = client.get("/api/assets", workspaceId=workspace, limit=2, **params, **({"cursor": cursor} if cursor else {}))
            assert r.status_code == 200, r.text
            seen += [a["id"] for a in r.json()["assets"]]
            cursor = r.json()["next"]
            if cursor is None:
                break
            if added < 4:
                upload(client, workspace, random.choice(["aaa_beach.jpg", "zzz_beach.jpg", "beach_3.jpg"]), "image/jpeg", files)
                added += 1
        assert len(seen) == len(set(seen)), params
        assert set(before) <= set(seen), params


def test_patch_is_checked_scoped_and_allowed_by_cors(alice, mallory, base_url):
    asset = upload(alice, 1, "patch-me.jpg", "image/jpeg", images())
    r = patch(alice, asset["id"], 1, {"title": "Hello", "tags": ["a", "b"]})
    assert r.status_code == 200, r.text
    assert r.json()["asset"]["title"] == "Hello" and r.json()["asset"]["tags"] == ["a", "b"]
    got = alice.get(f"/api/assets/{asset['id']}", workspaceId=1).json()["asset"]
    assert got["title"] == "Hello" and got["tags"] == ["a", "b"]
    for body, names in [({"title": 1}, "title"), ({"tags": ["x"] * 33}, "tags"), ({"tags": [1]}, "tags[0]"),
                        ({"owner": "me"}, "owner"), ({}, "title or tags"), ({"title": "x" * 256}, "title")]:
        assert names in assert_json_error(patch(alice, asset["id"], 1, body), 400), body
    assert "JSON" in assert_json_error(patch(alice, asset["id"], 1, None, raw="{"), 400)
    # Another tenant: 403 for the workspace, 404 for the asset through its own.
    assert_json_error(patch(mallory, asset["id"], 1, {"title": "mine"}), 403)
    assert_json_error(patch(mallory, asset["id"], 2, {"title": "mine"}), 404)
    assert alice.get(f"/api/assets/{asset['id']}", workspaceId=1).json()["asset"]["title"] == "Hello"
    preflight = requests.options(f"{base_url}/api/assets/{asset['id']}", verify=CERTIFICATE, timeout=30, headers={
        "Origin": "https://app.example.test", "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code in (200, 204), preflight.text
    assert "PATCH" in preflight.headers.get("Access-Control-Allow-Methods", "")


def test_bad_list_parameters_are_400_json_naming_them(alice):
    r = alice.get("/api/assets", workspaceId=1, sort="name", limit=1)
    cursor = r.json()["next"]
    cases = [({"q": "x" * 201}, "q"), ({"q": "a\x01b"}, "q"), ({"sort": "date"}, "sort"), ({"order": "up"}, "order"),
             ({"type": "audio"}, "type"), ({"status": "deleted"}, "status"), ({"limit": "0"}, "limit"),
             ({"limit": "500"}, "limit"), ({"cursor": "not-a-cursor"}, "cursor"), ({"cursor": "' OR 1=1 --"}, "cursor"),
             ({"cursor": cursor, "sort": "size"}, "cursor")]
    if cursor:
        forged = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BAA")
        cases.append(({"cursor": forged, "sort": "name"}, "cursor"))
    for params, name in cases:
        assert assert_json_error(alice.get("/api/assets", workspaceId=1, **params), 400).startswith(name), params
