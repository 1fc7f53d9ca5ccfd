"""Rotating ASSETD_JWT_SECRET (docs/OPERATIONS.md, "Rotating secrets"; review M7, L1): a
token or list cursor signed with ASSETD_JWT_SECRET or any of ASSETD_JWT_ACCEPTED_SECRETS is
accepted, and assetd signs with ASSETD_JWT_SECRET alone, taken verbatim (a comma in it is
part of it); once a secret is removed, what it signed is refused.
One private assetd (real FastCGI binary, real S3), restarted with each step's settings."""
import base64
import hashlib
import hmac
import io
import os
import secrets
import subprocess

from conftest import make_token, read_env_file
from private_assetd import PrivateAssetd, form


def png(seed):
    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (seed * 60 % 256, 10, 10)).save(out, "PNG")
    return out.getvalue()


def signed_with(token, secret):
    head, payload, signature = token.split(".")
    expected = hmac.new(secret.encode(), f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)) == expected


def test_old_tokens_work_while_listed_and_are_refused_once_removed(tmp_path):
    old, new = secrets.token_hex(32), secrets.token_hex(32)
    instance = PrivateAssetd(str(tmp_path), ASSETD_THREADS=4, ASSETD_JWT_SECRET=old)
    try:
        old_token, new_token = make_token(old, "rotating", [1]), make_token(new, "rotating", [1])

        def status(token, query="workspaceId=1"):
            instance.token = token
            r = instance.request("GET", "/api/assets", query)
            return r.status, r.json()

        # Before: one secret; two assets, so that a page of one has a cursor (made with OLD).
        instance.start()
        instance.token = old_token
        for seed in (1, 2):
            body, content_type = form(png(seed), f"r{seed}.png")
            assert instance.request("POST", "/api/assets/upload", "workspaceId=1", body, content_type).status == 200
        code, page = status(old_token, "workspaceId=1&limit=1")
        assert code == 200 and page["next"], page
        cursor = page["next"]
        assert status(new_token)[0] == 401
        instance.stop()

        # Step 2 of the procedure: NEW accepted, OLD still signs; both verify.
        instance.start(ASSETD_JWT_SECRET=old, ASSETD_JWT_ACCEPTED_SECRETS=new)
        assert status(old_token)[0] == 200
        assert status(new_token)[0] == 200
        instance.stop()

        # Step 3: NEW signs, OLD accepted (spaces around it dropped); still both, a cursor
        # made with OLD still reads, and assetd signs with NEW (assetd token).
        instance.start(ASSETD_JWT_SECRET=new, ASSETD_JWT_ACCEPTED_SECRETS=f" {old} ")
        assert status(old_token)[0] == 200
        code, page = status(new_token, f"workspaceId=1&limit=1&cursor={cursor}")
        assert code == 200 and len(page["assets"]) == 1, "a cursor made with OLD still reads"
        minted = subprocess.run([os.environ["ASSETD_BIN"], "token", "--sub", "cli", "--workspaces", "1"], capture_output=True, text=True,
                                timeout=30, env={**instance.env, "ASSETD_JWT_SECRET": new, "ASSETD_JWT_ACCEPTED_SECRETS": old},
                                check=True).stdout.strip()
        assert signed_with(minted, new) and not signed_with(minted, old)
        assert status(minted)[0] == 200
        instance.stop()

        # Step 4: NEW alone; what OLD signed is refused, token and cursor.
        instance.start(ASSETD_JWT_SECRET=new)
        code, body = status(old_token)
        assert code == 401 and body["error"] == "The token's signature is not valid.", body
        code, body = status(new_token, f"workspaceId=1&limit=1&cursor={cursor}")
        assert code == 400 and "cursor" in body["error"], body
        assert status(new_token)[0] == 200
        assert status(minted)[0] == 200
        instance.stop()

        # Review L1: a secret holding a comma is one secret, as it always was: a token
        # signed with the whole string verifies, one signed with either piece does not.
        whole = f"{old},{new}"
        instance.start(ASSETD_JWT_SECRET=whole)
        assert status(make_token(whole, "rotating", [1]))[0] == 200
        assert status(old_token)[0] == 401 and status(new_token)[0] == 401
        instance.stop()
    finally:
        instance.close()


def test_a_short_accepted_secret_stops_start_up_without_its_value():
    good = secrets.token_hex(32)
    result = subprocess.run([os.environ["ASSETD_BIN"], "check-config"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, **read_env_file(os.environ["ASSETD_ENV_FILE"]), "ASSETD_JWT_ACCEPTED_SECRETS": f"{good},tooshort"})
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "ASSETD_JWT_ACCEPTED_SECRETS: secret 2 of 2 must be at least 32 characters long (commas separate secrets)" in out, out
    assert good not in out and "tooshort" not in out
