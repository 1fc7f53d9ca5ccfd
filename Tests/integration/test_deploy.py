"""Production deployment as a sysadmin runs it: the shipped nginx site (rendered with only
paths, ports, certificates and a CORS allowlist changed), the systemd units, socket
activation, setup-bucket, check-config and the Debian package. Loopback only; every
subprocess and request has a time limit."""
import fcntl
import grp
import http.client
import json
import os
import re
import pwd
import shlex
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

from conftest import CERTIFICATE, Client, assert_json_error, make_token, read_env_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RENDER = os.path.join(ROOT, "scripts", "lib", "nginx-render")
ALLOWED = "https://app.example.test"
DENIED = "https://evil.example.test"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, timeout=60, env=None, check=False):
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    if check:
        assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
    return result


def state_dir():
    return os.environ["ASSETD_STATE_DIR"]


def stack_socket():
    """The stack's assetd socket (its first instance's, when dev-stack runs several)."""
    from conftest import read_env_file
    return read_env_file(os.environ["ASSETD_ENV_FILE"])["ASSETD_SOCKET"]


def assetd_bin():
    return os.environ["ASSETD_BIN"]


def start_nginx(name, socket_path, https_port, http_port=None, origins=(ALLOWED,), edit=None):
    """A second nginx with the production site: its allowlist, its own ports. `edit`, when
    given, is called with the rendered directory before nginx -t, as an administrator edits.
    `socket_path` may be a list: one upstream of several servers, in that order."""
    out = os.path.join(state_dir(), name)
    args = [RENDER, out, "--state", state_dir(), "--https-port", str(https_port), "--log-prefix", name]
    for path in socket_path if isinstance(socket_path, (list, tuple)) else [socket_path]:
        args += ["--socket", path]
    if http_port:
        args += ["--http-port", str(http_port)]
    for origin in origins:
        args += ["--cors-origin", origin]
    run(args, check=True)
    if edit:
        edit(out)
    conf = os.path.join(out, "nginx.conf")
    run(["nginx", "-t", "-q", "-c", conf, "-p", out, "-e", os.path.join(state_dir(), "logs", name + "-error.log")], check=True)
    run(["nginx", "-c", conf, "-p", out, "-e", os.path.join(state_dir(), "logs", name + "-error.log")], check=True)
    pid_file = os.path.join(out, "nginx.pid")
    deadline = time.time() + 10
    while not (os.path.exists(pid_file) and open(pid_file).read().strip()):
        assert time.time() < deadline, "nginx did not start"
        time.sleep(0.1)
    return int(open(pid_file).read())


def stop_nginx(pid):
    try:
        os.kill(pid, signal.SIGQUIT)
    except ProcessLookupError:
        return
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


@pytest.fixture(scope="module")
def prod():
    """The production site in front of the stack's assetd, on its own ports."""
    https, http = free_port(), free_port()
    pid = start_nginx("prod-nginx", stack_socket(), https, http)
    yield {"url": f"https://127.0.0.1:{https}", "https": https, "http": http}
    stop_nginx(pid)


def get_from(source, port, path, headers=None, method="GET", count=1):
    """Requests over one TLS connection bound to `source` (127.0.0.2 is not this host's
    own 127.0.0.1 to nginx), so the allow lists and rate limits see another client."""
    context = ssl.create_default_context(cafile=CERTIFICATE)
    context.check_hostname = False
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context, source_address=(source, 0))
    answers = []
    try:
        for _ in range(count):
            conn.request(method, path, headers=headers or {})
            r = conn.getresponse()
            answers.append((r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()))
    finally:
        conn.close()
    return answers


# --- nginx --------------------------------------------------------------------------

def test_production_site_passes_nginx_t(tmp_path):
    tls = tmp_path / "tls"
    tls.mkdir()
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test",
         "-keyout", str(tls / "key.pem"), "-out", str(tls / "cert.pem")], check=True)
    run([RENDER, str(tmp_path / "n"), "--state", str(tmp_path), "--https-port", "1443", "--http-port", "1080",
         "--socket", "/run/assetd/assetd.sock", "--cors-origin", ALLOWED], check=True)
    result = run(["nginx", "-t", "-c", str(tmp_path / "n" / "nginx.conf"), "-p", str(tmp_path / "n"),
                  "-e", str(tmp_path / "error.log")])
    print(result.stderr)
    assert result.returncode == 0 and "test is successful" in result.stderr


def test_cors_preflight_allowed_origin_gets_the_headers(prod):
    r = requests.options(prod["url"] + "/s3/start-upload", verify=CERTIFICATE, timeout=10, headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "GET" in r.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    assert int(r.headers["Access-Control-Max-Age"]) > 0
    assert "Access-Control-Allow-Credentials" not in r.headers


def test_cors_disallowed_origin_gets_none(prod):
    r = requests.options(prod["url"] + "/s3/start-upload", verify=CERTIFICATE, timeout=10, headers={
        "Origin": DENIED, "Access-Control-Request-Method": "GET"})
    assert r.status_code == 204
    assert not [h for h in r.headers if h.lower().startswith("access-control-")], r.headers
    r = requests.get(prod["url"] + "/healthz", verify=CERTIFICATE, timeout=10, headers={"Origin": DENIED})
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers


def test_security_headers_and_http_redirect(prod):
    r = requests.get(prod["url"] + "/healthz", verify=CERTIFICATE, timeout=10, headers={"Origin": ALLOWED})
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")
    assert len(r.headers["X-Request-Id"]) == 32
    r = requests.get(f"http://127.0.0.1:{prod['http']}/s3/start-upload?x=1", allow_redirects=False, timeout=10)
    assert r.status_code == 301
    assert r.headers["Location"].startswith("https://") and r.headers["Location"].endswith("/s3/start-upload?x=1")


def test_production_site_serves_no_demo_page_by_default(prod):
    """The page asks users for a bearer token: a host serves it only once its operator
    uncomments the include (the dev stack renders it with --demo-page). The client module,
    which holds no token, stays for frontends to import."""
    r = requests.get(prod["url"] + "/", verify=CERTIFICATE, timeout=10, headers={"Origin": ALLOWED})
    assert r.status_code == 404, (r.status_code, r.headers.get("Content-Type"), r.text[:200])
    assert r.headers["Content-Type"].startswith("application/json")
    assert "connect-src" not in r.headers.get("Content-Security-Policy", "")
    for path in ("/demo.js", "/demo.css", "/upload/demo.js"):
        assert requests.get(prod["url"] + path, verify=CERTIFICATE, timeout=10).status_code == 404, path
    r = requests.get(prod["url"] + "/assetd-upload.js", verify=CERTIFICATE, timeout=10, headers={"Origin": ALLOWED})
    assert r.status_code == 200 and "export async function upload" in r.text
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED


def nginx_default_access_log():
    """Where this nginx writes access lines for a server without access_log of its own."""
    configure = run(["nginx", "-V"]).stderr
    for word in configure.split():
        if word.startswith("--http-log-path="):
            return word.split("=", 1)[1]
    return None


def test_http_redirect_logs_no_query_string(prod):
    """A link's query (once /?token=...) crosses plain HTTP before the redirect; the port-80
    server writes a line for it in its own log, without the query, and none anywhere else."""
    logs = os.path.join(state_dir(), "logs")
    candidates = [os.path.join(logs, name) for name in os.listdir(logs)]
    default = nginx_default_access_log()
    if default:
        candidates.append(default)
    sizes = {path: os.path.getsize(path) for path in candidates if os.path.isfile(path)}
    secret = "s3cr3t-" + uuid.uuid4().hex
    r = requests.get(f"http://127.0.0.1:{prod['http']}/?token={secret}&workspaceId=1", allow_redirects=False, timeout=10)
    assert r.status_code == 301 and r.headers["Location"].startswith("https://")
    redirect_log = os.path.join(logs, "prod-nginx-redirect.log")
    deadline = time.time() + 5
    lines = []
    while not lines and time.time() < deadline:
        if os.path.exists(redirect_log):
            with open(redirect_log, errors="replace") as f:
                f.seek(sizes.get(redirect_log, 0))
                lines = [l for l in f.read().splitlines() if '"GET / ' in l and " 301 " in l]
        if not lines:
            time.sleep(0.1)
    leaked = []
    for path in set(candidates) | {redirect_log}:
        if not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            f.seek(sizes.get(path, 0))
            if secret.encode() in f.read():
                leaked.append(path)
    assert not leaked, f"the query's token was written to {leaked}"
    assert lines, f"no line for the redirect in {redirect_log}"


def test_413_from_nginx_is_json_with_cors(prod, secret):
    client = Client(prod["url"], make_token(secret, "big", [1]))
    r = client.session.post(prod["url"] + "/s3/complete-upload", data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                            headers=client.headers({"Origin": ALLOWED, "Content-Type": "application/json"}),
                            timeout=30, verify=CERTIFICATE)
    assert r.headers.get("Access-Control-Allow-Origin") == ALLOWED
    assert_json_error(r, 413)


def test_metrics_refused_from_elsewhere(prod):
    (status, headers, body), = get_from("127.0.0.2", prod["https"], "/metrics", {"Origin": ALLOWED})
    assert status == 403
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"]
    (status, headers, body), = get_from("127.0.0.1", prod["https"], "/metrics")
    assert status == 200 and b"assetd_http_requests_total" in body


def test_metrics_allow_list_is_the_snippet_the_admin_edits(prod):
    """/metrics: loopback, plus what assetd-metrics-allow.conf lists (nothing as shipped)."""
    shipped = open(os.path.join(ROOT, "nginx", "snippets", "assetd-metrics-allow.conf")).read()
    assert not [l for l in shipped.splitlines() if l.strip() and not l.lstrip().startswith("#")], shipped

    def allow_prometheus(out):
        with open(os.path.join(out, "snippets", "assetd-metrics-allow.conf"), "a") as f:
            f.write("allow 127.0.0.2;\n")
    port = free_port()
    pid = start_nginx("metrics-nginx", stack_socket(), port, edit=allow_prometheus)
    try:
        (status, _, body), = get_from("127.0.0.2", port, "/metrics")
        assert status == 200 and b"assetd_http_requests_total" in body
        (status, _, _), = get_from("127.0.0.3", port, "/metrics")
        assert status == 403
        (status, _, _), = get_from("127.0.0.1", port, "/metrics")
        assert status == 200
    finally:
        stop_nginx(pid)


def test_acme_challenges_are_served_over_plain_http(prod):
    """certbot certonly --webroot: port 80 serves /.well-known/acme-challenge/ from the
    webroot (STATE/acme in the render, /var/www/letsencrypt as shipped), redirects the rest."""
    token = "assetd-test-" + uuid.uuid4().hex
    folder = os.path.join(state_dir(), "acme", ".well-known", "acme-challenge")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, token), "w") as f:
        f.write(token + ".key-authorization")
    try:
        r = requests.get(f"http://127.0.0.1:{prod['http']}/.well-known/acme-challenge/{token}", allow_redirects=False, timeout=10)
        assert r.status_code == 200 and r.text == token + ".key-authorization", (r.status_code, r.text[:200])
        r = requests.get(f"http://127.0.0.1:{prod['http']}/.well-known/acme-challenge/missing", allow_redirects=False, timeout=10)
        assert r.status_code == 404
        r = requests.get(f"http://127.0.0.1:{prod['http']}/.well-known/other", allow_redirects=False, timeout=10)
        assert r.status_code == 301
    finally:
        os.unlink(os.path.join(folder, token))
    assert "root /var/www/letsencrypt;" in open(os.path.join(ROOT, "nginx", "assetd.conf")).read()


def test_429_past_the_rate_is_json_with_cors(prod):
    answers = get_from("127.0.0.2", prod["https"], "/healthz", {"Origin": ALLOWED}, count=120)
    limited = [a for a in answers if a[0] == 429]
    assert limited, [a[0] for a in answers]
    status, headers, body = limited[0]
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"]
    assert headers["access-control-allow-origin"] == ALLOWED
    # This host's own address is not limited (health checks, monitoring).
    assert all(a[0] == 200 for a in get_from("127.0.0.1", prod["https"], "/healthz", count=120))


# --- the binary and systemd ---------------------------------------------------------

def test_binary_needs_no_swift_toolchain():
    ldd = run(["ldd", assetd_bin()], check=True).stdout
    assert "libswift" not in ldd, ldd
    result = run([assetd_bin(), "--help"], env={"LD_LIBRARY_PATH": "", "PATH": "/usr/bin:/bin"}, check=True)
    assert "check-config" in result.stdout and "setup-bucket" in result.stdout


def test_every_help_names_documents_that_exist():
    """Each command's --help and assetd-thumbnailer's: exit 0, and every docs page (and its
    quoted section) it points to is there."""
    commands = ["serve", "token", "setup-bucket", "check-config", "migrate-db", "setup-search", "events", "backfill-media"]
    helps = {name: run([assetd_bin(), "help", name], check=True).stdout for name in commands}
    helps["assetd --help"] = run([assetd_bin(), "--help"], check=True).stdout
    thumbnailer = os.path.join(os.path.dirname(assetd_bin()), "assetd-thumbnailer")
    # With standard input no socket: the help, not the complaint that it is none.
    result = subprocess.run([thumbnailer, "--help"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result
    assert "assetd-thumbnailer" in result.stdout and "socket" in result.stdout and "standard input" in result.stdout, result.stdout
    helps["assetd-thumbnailer --help"] = result.stdout
    found = 0
    for name, text in helps.items():
        flat = " ".join(text.split())
        for page, section in re.findall(r'docs/([A-Z]+\.md)(?:, "([^"]+)")?', flat):
            path = os.path.join(ROOT, "docs", page)
            assert os.path.isfile(path), f"{name}'s help points to docs/{page}, which does not exist"
            if section:
                assert section in open(path, encoding="utf-8").read(), f"{name}'s help points to \"{section}\" in docs/{page}"
            found += 1
    assert found >= 3, helps


def units_for_this_binary(tmp_path):
    """The shipped units, with ExecStart naming the binary under test."""
    for unit in ("assetd.service", "assetd.socket"):
        text = open(os.path.join(ROOT, "systemd", unit)).read().replace("/usr/bin/assetd", assetd_bin())
        (tmp_path / unit).write_text(text)
    return [str(tmp_path / "assetd.socket"), str(tmp_path / "assetd.service")]


def test_systemd_units_verify_and_score(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    units = units_for_this_binary(tmp_path)
    verify = run(["systemd-analyze", "verify"] + units)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    security = run(["systemd-analyze", "security", "--offline=true", units[1]])
    line = [l for l in security.stdout.splitlines() if "Overall exposure level" in l][0]
    print(line)
    score = float(line.split(":")[1].split()[0])
    assert score <= 2.0, line


def test_exit_78_stops_the_socket_and_no_other_end_does(tmp_path):
    """M2: assetd.service's ExecStopPost stops assetd.socket when assetd exits 78 (a setting
    it refuses, not restarted), so that nginx's connections are refused instead of waiting in
    the socket's backlog; any other end (a clean stop, an upgrade's restart, a crash that
    Restart= retries, a signal) keeps the socket. The command runs as systemd runs it: `$$`
    unescaped, with systemd's EXIT_* variables and the settings file's merged over them, and a
    systemctl that answers `show -P ExecMainStatus` and records the rest (no systemd runs here
    as PID 1). The status is systemd's, not $EXIT_STATUS: the settings file could set that."""
    text = open(os.path.join(ROOT, "systemd", "assetd.service")).read()
    commands = [l.split("=", 1)[1] for l in text.splitlines() if l.startswith("ExecStopPost=")]
    # `+`: outside the sandbox (User=assetd may not stop a unit); `env -i`: nothing of the
    # settings file (PATH, LD_PRELOAD, EXIT_STATUS) reaches this root command.
    assert len(commands) == 1 and commands[0].startswith("+/usr/bin/env -i /bin/sh -c "), commands
    assert "exec /bin/systemctl --no-block stop assetd.socket" in commands[0], commands
    assert "EXIT_STATUS" not in commands[0], commands
    fake = tmp_path / "systemctl"
    argv = shlex.split(commands[0][1:].replace("$$", "$").replace("/bin/systemctl", str(fake)))
    calls = tmp_path / "calls"
    status_file = tmp_path / "status"
    fake.write_text(f'#!/bin/sh\nif [ "$1" = show ]; then echo "$*" >>"{calls}.show"; cat "{status_file}"; exit 0; fi\n'
                    f'echo "$*" >>"{calls}"\n')
    fake.chmod(0o755)
    # (systemd's ExecMainStatus, what the settings file sets in the environment, stops?)
    ends = [("78", {}, True), ("0", {}, False), ("1", {}, False), ("9", {}, False), ("15", {}, False),
            ("0", {"EXIT_STATUS": "78", "EXIT_CODE": "exited", "SERVICE_RESULT": "exit-code"}, False),
            ("78", {"EXIT_STATUS": "0", "PATH": str(tmp_path)}, True)]
    for status, from_settings, stops in ends:
        calls.unlink(missing_ok=True)
        status_file.write_text(status + "\n")
        env = {"PATH": "/usr/bin:/bin", "SERVICE_RESULT": "exit-code", "EXIT_CODE": "exited", "EXIT_STATUS": status}
        env.update(from_settings)
        done = run(argv, env=env)
        assert done.returncode == 0, (status, done.stderr)
        recorded = calls.read_text().splitlines() if calls.exists() else []
        assert recorded == (["--no-block stop assetd.socket"] if stops else []), (status, from_settings, recorded)
        assert open(f"{calls}.show").read().splitlines()[-1] == "show -P ExecMainStatus assetd.service"
        if stops:
            assert "stopping assetd.socket" in done.stdout, done.stdout


def never_answering_socket(path):
    """A listening socket that nobody accepts on: systemd's assetd.socket while assetd.service
    is stopped, failed or restarting (connections wait in its backlog)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    os.chmod(path, 0o666)
    return listener


def quick_timeout(seconds):
    """An edit of the rendered site: the quick routes' read timeout (30 s as shipped) made
    shorter, so that a test waits it out in seconds."""
    def edit(out):
        site = os.path.join(out, "assetd.conf")
        text = open(site).read()
        shipped = "\n    fastcgi_read_timeout 30s;\n"
        assert text.count(shipped) == 1, "the site's server-wide read timeout is no longer 30s"
        open(site, "w").write(text.replace(shipped, f"\n    fastcgi_read_timeout {seconds}s;\n"))
    return edit


def test_a_host_that_accepts_but_never_answers_costs_quick_routes_the_short_timeout(tmp_path):
    """M2, nginx's side: quick routes wait the site's short read timeout (30 s shipped, 2 s
    here), then get nginx's 503 JSON with Retry-After; complete-upload and delete keep 300 s
    (still waiting after 6 s); and with a second, live server in the upstream, an idempotent
    request moves on to it after that timeout."""
    dead = never_answering_socket(str(tmp_path / "dead.sock"))
    shipped = open(os.path.join(ROOT, "nginx", "assetd.conf")).read()
    assert re.search(r"location ~ \^/s3/\(\?:complete-upload\|delete\)\$ \{\n        fastcgi_read_timeout 300s;", shipped)
    snippet = open(os.path.join(ROOT, "nginx", "snippets", "assetd-fastcgi-pass.conf")).read()
    assert not re.search(r"^\s*fastcgi_read_timeout", snippet, re.M), "the snippet would clash with the site's per-location timeouts"
    assert "assetd-fastcgi.conf" not in shipped, "the shipped site includes the pass snippet; the old one adds 300 s for older sites"
    port = free_port()
    nginx = start_nginx("stalled-nginx", str(tmp_path / "dead.sock"), port, edit=quick_timeout(2))
    try:
        started = time.monotonic()
        r = requests.get(f"https://127.0.0.1:{port}/healthz", headers={"Origin": ALLOWED}, verify=CERTIFICATE, timeout=20)
        waited = time.monotonic() - started
        assert assert_json_error(r, 503) == "assetd did not answer in time; try again shortly."
        assert r.headers.get("Retry-After") == "5" and 1.5 <= waited < 8, (r.headers, waited)
        for method, path in (("POST", "/s3/complete-upload"), ("DELETE", "/s3/delete?workspaceId=1&assetId=1")):
            with pytest.raises(requests.exceptions.ReadTimeout):
                requests.request(method, f"https://127.0.0.1:{port}{path}", data=b"{}" if method == "POST" else None,
                                 headers={"Origin": ALLOWED, "Content-Type": "application/json"}, verify=CERTIFICATE, timeout=6)
    finally:
        stop_nginx(nginx)
    port = free_port()
    nginx = start_nginx("stalled-pair-nginx", [str(tmp_path / "dead.sock"), stack_socket()], port, edit=quick_timeout(2))
    try:
        for _ in range(3):
            started = time.monotonic()
            r = requests.get(f"https://127.0.0.1:{port}/healthz", verify=CERTIFICATE, timeout=20)
            assert r.status_code == 200 and r.json() == {"ok": True}, r.text
            assert time.monotonic() - started < 8
    finally:
        stop_nginx(nginx)
        dead.close()


def older_site(out):
    """An edit of the rendered site into one written before assetd-fastcgi-pass.conf: every
    location includes assetd-fastcgi.conf and the site sets no read timeout of its own. A
    package upgrade replaces the snippets but never the site, so upgraded hosts run this."""
    site = os.path.join(out, "assetd.conf")
    text = open(site).read()
    assert "assetd-fastcgi-pass.conf;" in text
    text = text.replace("assetd-fastcgi-pass.conf;", "assetd-fastcgi.conf;")
    text = re.sub(r"^\s*fastcgi_read_timeout [0-9]+s;\n", "", text, flags=re.M)
    open(site, "w").write(text)


def test_a_site_written_before_the_split_snippet_keeps_its_300_s_after_an_upgrade(tmp_path):
    """The upgrade path of the read timeouts: an older site, with the new snippets, passes
    nginx -t (no second fastcgi_read_timeout in a location), serves, and every route keeps
    300 s, as before, instead of nginx's default 60 s."""
    snippet = open(os.path.join(ROOT, "nginx", "snippets", "assetd-fastcgi.conf")).read()
    assert re.search(r"^fastcgi_read_timeout 300s;$", snippet, re.M), snippet
    assert "include /etc/nginx/snippets/assetd-fastcgi-pass.conf;" in snippet, snippet
    port = free_port()
    nginx = start_nginx("older-site-nginx", stack_socket(), port, edit=older_site)
    try:
        r = requests.get(f"https://127.0.0.1:{port}/healthz", verify=CERTIFICATE, timeout=20)
        assert r.status_code == 200 and r.json() == {"ok": True}, r.text
    finally:
        stop_nginx(nginx)


def test_socket_activation_serves_through_nginx_and_notifies(tmp_path, settings):
    """assetd started the way systemd starts it: the socket made by systemd-socket-activate
    (LISTEN_FDS, LISTEN_PID), READY=1 and STOPPING=1 on $NOTIFY_SOCKET, SIGTERM drains."""
    if not shutil.which("systemd-socket-activate"):
        pytest.skip("systemd-socket-activate is not installed")
    env_file = tmp_path / "assetd.env"
    lines = [f"{k}={v}" for k, v in settings.items() if k not in ("ASSETD_SOCKET", "ASSETD_DATABASE", "ASSETD_STATE_DIR")]
    lines += [f"ASSETD_DATABASE={tmp_path}/activated.sqlite", f"ASSETD_STATE_DIR={tmp_path}", "ASSETD_THREADS=4"]
    env_file.write_text("\n".join(lines) + "\n")
    sock = str(tmp_path / "activated.sock")
    notify_path = str(tmp_path / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(20)
    log = open(tmp_path / "activated.log", "w")
    proc = subprocess.Popen(["systemd-socket-activate", "-l", sock, "-E", f"NOTIFY_SOCKET={notify_path}",
                             assetd_bin(), "serve", "--config", str(env_file)], stdout=log, stderr=log)
    port = free_port()
    nginx = None
    try:
        deadline = time.time() + 10
        while not os.path.exists(sock):
            assert time.time() < deadline and proc.poll() is None, "systemd-socket-activate did not listen"
            time.sleep(0.05)
        os.chmod(sock, 0o666)
        nginx = start_nginx("activated-nginx", sock, port)
        r = requests.get(f"https://127.0.0.1:{port}/healthz", verify=CERTIFICATE, timeout=20)
        assert r.status_code == 200 and r.json() == {"ok": True}
        # A fresh database: its migration ran first, with systemd's start timeout extended
        # meanwhile (EXTEND_TIMEOUT_USEC, Type=notify), then READY=1.
        messages = [notify.recv(4096).decode()]
        while not messages[-1].startswith("READY=1") and len(messages) < 20:
            messages.append(notify.recv(4096).decode())
        assert messages[0].startswith("EXTEND_TIMEOUT_USEC=30000000") and messages[-1].startswith("READY=1"), messages
        r = requests.get(f"https://127.0.0.1:{port}/readyz", verify=CERTIFICATE, timeout=20)
        assert r.status_code == 200, r.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert notify.recv(4096).decode().startswith("STOPPING=1")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if nginx:
            stop_nginx(nginx)
        notify.close()
        log.close()
    text = open(tmp_path / "activated.log").read()
    assert "systemd socket activation" in text, text[-2000:]


# --- setup-bucket and check-config --------------------------------------------------

def assetd(args, timeout=60, **overrides):
    """The binary with the stack's settings file; `overrides` win over it, as the environment does."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/root"}
    env.update(overrides)
    return run([assetd_bin()] + args + ["--config", os.environ["ASSETD_ENV_FILE"]], timeout=timeout, env=env)


@pytest.mark.s3_wiring
def test_setup_bucket_merges_by_id_and_is_idempotent(s3):
    bucket = f"assetd-setup-{uuid.uuid4().hex[:12]}"
    missing = assetd(["setup-bucket"], AWS_BUCKET=bucket)
    assert missing.returncode != 0
    assert "does not exist" in missing.stderr and "--create" in missing.stderr, missing.stderr

    # --dry-run alone, before the bucket exists: what it would do, and exit 0.
    alone = assetd(["setup-bucket", "--dry-run"], AWS_BUCKET=bucket)
    assert alone.returncode == 0, alone.stderr
    assert f"bucket {bucket}: does not exist; would create it" in alone.stdout, alone.stdout
    assert "--create" in alone.stdout
    plan = json.loads([l for l in alone.stdout.splitlines() if l.startswith("{")][0])
    assert plan["CORSConfiguration"]["CORSRules"][0]["ID"] == "assetd"
    assert "nothing was changed" in alone.stdout

    dry = assetd(["setup-bucket", "--create", "--dry-run"], AWS_BUCKET=bucket)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads([l for l in dry.stdout.splitlines() if l.startswith("{")][0])
    assert plan["CORSConfiguration"]["CORSRules"][0]["ID"] == "assetd"
    assert s3.list_buckets()["Buckets"] and bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]

    created = assetd(["setup-bucket", "--create"], AWS_BUCKET=bucket)
    assert created.returncode == 0, created.stderr
    assert f"bucket {bucket}: created" in created.stdout
    # A foreign rule of each kind, set up by someone else, must survive.
    foreign_cors = {"ID": "partner", "AllowedOrigins": ["https://partner.example"], "AllowedMethods": ["GET"],
                    "AllowedHeaders": ["*"], "MaxAgeSeconds": 60}
    cors = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [foreign_cors] + cors})
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    foreign_rule = {"ID": "partner-expire", "Filter": {"Prefix": "partner/"}, "Status": "Enabled", "Expiration": {"Days": 30}}
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [foreign_rule] + rules})

    first = assetd(["setup-bucket"], AWS_BUCKET=bucket, ASSETD_CORS_ORIGINS="https://app.example.test", ASSETD_ABORT_INCOMPLETE_DAYS="3")
    assert first.returncode == 0, first.stderr
    print(first.stdout)
    assert "CORS rule assetd: updated" in first.stdout and "1 other rule kept" in first.stdout
    after_first = (s3.get_bucket_cors(Bucket=bucket)["CORSRules"], s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"])
    second = assetd(["setup-bucket"], AWS_BUCKET=bucket, ASSETD_CORS_ORIGINS="https://app.example.test", ASSETD_ABORT_INCOMPLETE_DAYS="3")
    assert second.returncode == 0, second.stderr
    assert "CORS rule assetd: unchanged" in second.stdout and "lifecycle rule assetd-abort-incomplete-multipart-uploads: unchanged" in second.stdout
    cors, rules = s3.get_bucket_cors(Bucket=bucket)["CORSRules"], s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert (cors, rules) == after_first
    by_id = {r.get("ID"): r for r in cors}
    assert set(by_id) == {"partner", "assetd"}
    assert by_id["partner"]["AllowedOrigins"] == ["https://partner.example"]
    assert by_id["assetd"]["AllowedOrigins"] == ["https://app.example.test"]
    lifecycle = {r["ID"]: r for r in rules}
    assert set(lifecycle) == {"partner-expire", "assetd-abort-incomplete-multipart-uploads"}
    assert lifecycle["partner-expire"]["Expiration"]["Days"] == 30
    assert lifecycle["assetd-abort-incomplete-multipart-uploads"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 3


@pytest.mark.s3_wiring
def test_check_config_ok_on_the_stack():
    result = assetd(["check-config"])
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    for item in ("settings", "database", "socket", "spool directory", "bucket", "object round trip"):
        assert f"OK   {item}:" in result.stdout


@pytest.mark.s3_wiring
def test_check_config_fails_with_a_clear_line():
    bad = assetd(["check-config"], ASSETD_THREADS="zero")
    assert bad.returncode != 0
    assert "FAIL settings: ASSETD_THREADS must be an integer" in bad.stdout, bad.stdout
    missing = assetd(["check-config"], AWS_BUCKET=f"assetd-missing-{uuid.uuid4().hex[:8]}")
    assert missing.returncode != 0
    line = [l for l in missing.stdout.splitlines() if l.startswith("FAIL")]
    assert len(line) == 1 and line[0].startswith("FAIL bucket:") and "does not exist" in line[0], missing.stdout


def test_check_config_says_how_to_make_a_missing_state_directory(tmp_path):
    """Before the first start nothing but the package makes /var/lib/assetd: the FAIL line
    names the command that does."""
    state = tmp_path / "var-lib-assetd"
    result = assetd(["check-config"], ASSETD_DATABASE=f"{state}/assetd.sqlite", ASSETD_STATE_DIR=str(state))
    assert result.returncode != 0
    lines = {l.split(":")[0]: l for l in result.stdout.splitlines() if l.startswith("FAIL")}
    for item in ("FAIL database", "FAIL spool directory"):
        assert item in lines, result.stdout
        assert f"{state} does not exist; create it as root: install -d -o assetd -g assetd -m 0700 {state}" in lines[item], lines[item]


# --- the Debian package -------------------------------------------------------------

def group_members(name):
    """The members of group `name`, or None when there is no such group."""
    try:
        return grp.getgrnam(name).gr_mem
    except KeyError:
        return None


def assert_socket_group_is_nginx_alone():
    """The installed socket unit gives the socket the group assetd-web, which exists, has
    www-data (nginx's workers) as its only member, and is no user's primary group."""
    unit = open("/lib/systemd/system/assetd.socket").read().splitlines()
    assert "SocketGroup=assetd-web" in unit, [l for l in unit if l.startswith("Socket")]
    members = group_members("assetd-web")
    assert members is not None, "postinst made no group assetd-web"
    assert members == ["www-data"], members
    gid = grp.getgrnam("assetd-web").gr_gid
    assert not [u.pw_name for u in pwd.getpwall() if u.pw_gid == gid]
    assert gid in os.getgrouplist("www-data", pwd.getpwnam("www-data").pw_gid)


def thumbnailer_bin():
    return os.path.join(os.path.dirname(assetd_bin()), "assetd-thumbnailer")


def test_decoder_units_verify_and_score_at_most_1_5(tmp_path):
    """The decoder's socket and its one zygote service (issue 17): valid, Accept=no (one
    long-running zygote forks the children), restarted when it ends, an OOM kill of a
    child costing no more than that child, and sandboxed to an exposure of 1.5 or less."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    assert not os.path.exists(os.path.join(ROOT, "systemd", "assetd-thumbnailer@.service"))
    for unit in ("assetd-thumbnailer.socket", "assetd-thumbnailer.service"):
        text = open(os.path.join(ROOT, "systemd", unit)).read().replace("/usr/bin/assetd-thumbnailer", thumbnailer_bin())
        (tmp_path / unit).write_text(text)
    verify = run(["systemd-analyze", "verify", str(tmp_path / "assetd-thumbnailer.socket"), str(tmp_path / "assetd-thumbnailer.service")])
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    assert "Accept=no" in (tmp_path / "assetd-thumbnailer.socket").read_text()
    text = (tmp_path / "assetd-thumbnailer.service").read_text()
    for setting in ("DynamicUser=yes", "PrivateNetwork=yes", "RestrictAddressFamilies=AF_UNIX", "OOMPolicy=continue",
                    "SystemCallFilter=@system-service", "MemoryMax=", "InaccessiblePaths=-/etc/assetd -/var/lib/assetd",
                    "Restart=always", "StandardInput=socket"):
        assert setting in text, setting
    assert "LimitCPU=" not in text and "RuntimeMaxSec=" not in text  # they would end the zygote, not a task
    security = run(["systemd-analyze", "security", "--offline=true", str(tmp_path / "assetd-thumbnailer.service")])
    line = [l for l in security.stdout.splitlines() if "Overall exposure level" in l][0]
    print(line)
    assert float(line.split(":")[1].split()[0]) <= 1.5, line
    # assetd itself is pointed at that socket.
    service = open(os.path.join(ROOT, "systemd", "assetd.service")).read()
    assert "ASSETD_THUMBNAILER_SOCKET=/run/assetd-thumbnailer/decoder.sock" in service
    assert "ListenStream=/run/assetd-thumbnailer/decoder.sock" in open(os.path.join(ROOT, "systemd", "assetd-thumbnailer.socket")).read()


def packages_the_binaries_need():
    """The Debian packages of the libraries assetd and its decoder link directly (their
    ELF NEEDED entries, found where ldd finds them, owned per dpkg -S)."""
    binaries = [assetd_bin(), os.path.join(os.path.dirname(assetd_bin()), "assetd-thumbnailer")]
    found = {}
    for line in run(["ldd", *binaries], check=True).stdout.splitlines():
        if "=>" in line and "/" in line.split("=>")[1]:
            name, path = line.split("=>")[0].strip(), line.split("=>")[1].split()[0]
            found[name] = path
    packages = set()
    for binary in binaries:
        dynamic = run(["readelf", "-d", binary], check=True).stdout
        for name in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic):
            if name.startswith("ld-linux"):
                continue
            assert name in found, f"ldd does not find {name}"
            path = found[name]
            # Debian registers libraries under /usr/lib or /lib (merged /usr): ask for both.
            candidates = [path, os.path.realpath(path)]
            candidates += [c.removeprefix("/usr") if c.startswith("/usr/") else "/usr" + c for c in list(candidates)]
            # The first that dpkg knows (each dpkg -S reads the whole database: ~0.1 s).
            owner = next((o for o in (run(["dpkg", "-S", c]).stdout for c in candidates) if o), "")
            assert owner, f"no package owns {path} ({name})"
            packages.add(owner.split(":")[0].strip())
    return packages


ADMINISTRATORS_FILES = ("/etc/assetd/assetd.env", "/etc/nginx/sites-available/assetd",
                        "/etc/nginx/snippets/assetd-metrics-allow.conf")


def assert_settings_file_is_private():
    info = os.stat("/etc/assetd/assetd.env")
    assert (info.st_uid, info.st_gid) == (0, grp.getgrnam("assetd").gr_gid)
    assert stat.S_IMODE(info.st_mode) == 0o640, oct(info.st_mode)


def newer_package(deb, tmp_path):
    """The same package as a newer version whose every shipped copy of the settings example,
    the site and the allow list differs: what makes dpkg ask about an edited conffile."""
    tree = tmp_path / "newer"
    run(["dpkg-deb", "-R", deb, str(tree)], check=True)
    control = (tree / "DEBIAN" / "control").read_text()
    version = re.search(r"^Version: (.*)$", control, re.M).group(1)
    (tree / "DEBIAN" / "control").write_text(control.replace(f"Version: {version}", f"Version: {version}+1"))
    changed = 0
    for path in tree.rglob("*"):
        if path.is_file() and path.name in ("assetd.env", "assetd.env.example", "assetd", "nginx-site-assetd.conf",
                                            "assetd-metrics-allow.conf") and "DEBIAN" not in path.parts and "bin" not in path.parts:
            path.write_text(path.read_text() + "\n# a setting of the newer release\n")
            changed += 1
    assert changed >= 3, changed
    newer = tmp_path / "assetd_newer.deb"
    run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(tree), str(newer)], timeout=300, check=True)
    return str(newer), f"{version}+1"


def upgrade_keeps_the_administrators_edits(deb, tmp_path):
    """Edited settings, site and allow list; a newer package installed with no terminal
    (stdin closed, as unattended-upgrades and configuration management run it): no
    prompt, dpkg exits 0, every edit kept, the settings file still 0640 root:assetd."""
    edits = {}
    for edited in ADMINISTRATORS_FILES:
        edits[edited] = open(edited).read() + f"\n# edited by the administrator {uuid.uuid4()}\n"
        Path(edited).write_text(edits[edited])
    newer, version = newer_package(deb, tmp_path)
    upgrade = subprocess.run(["dpkg", "-i", newer], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    assert upgrade.returncode == 0, upgrade.stdout[-2000:] + upgrade.stderr[-2000:]
    assert "conffile" not in upgrade.stdout + upgrade.stderr, upgrade.stdout + upgrade.stderr
    assert run(["dpkg-query", "-W", "-f=${Version}", "assetd"]).stdout == version
    for edited, text in edits.items():
        assert open(edited).read() == text, edited
        for suffix in (".dpkg-dist", ".dpkg-new", ".dpkg-old"):
            assert not os.path.exists(edited + suffix), edited + suffix
    assert_settings_file_is_private()
    # The newer examples are there to compare with.
    assert "a setting of the newer release" in open("/usr/share/assetd/conf/etc/assetd/assetd.env").read()
    # The older package again over it (a downgrade is an upgrade to dpkg) leaves them too.
    run(["dpkg", "-i", deb], timeout=120, check=True)
    for edited, text in edits.items():
        assert open(edited).read() == text, edited


def postinst_restarts_the_running_units_on_upgrade_only(deb, tmp_path):
    """The package's postinst under systemd (its test of /run/systemd/system pointed at a
    directory of the test's, systemctl a recorder): an upgrade try-restarts the decoder,
    then assetd (try-restart: only those running); a first install restarts nothing;
    without systemd it calls no systemctl."""
    control = tmp_path / "control"
    run(["dpkg-deb", "-e", deb, str(control)], check=True)
    script = (control / "postinst").read_text()
    assert script.count("/run/systemd/system") == 1, "one test of systemd in postinst"
    fake_systemd = tmp_path / "run-systemd-system"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "systemctl-calls"
    (bin_dir / "systemctl").write_text(f"#!/bin/sh\necho \"$*\" >>{calls}\n")
    (bin_dir / "systemctl").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin"}

    def postinst(*args, systemd=True):
        patched = tmp_path / "postinst"
        patched.write_text(script.replace("/run/systemd/system", str(fake_systemd if systemd else tmp_path / "absent")))
        calls.write_text("")
        run(["sh", str(patched), *args], env=env, check=True)
        return calls.read_text().splitlines()

    fake_systemd.mkdir()
    assert postinst("configure", "0.0.1") == ["daemon-reload", "try-restart assetd-thumbnailer.service",
                                              "try-restart assetd.service"]
    assert postinst("configure", "") == ["daemon-reload"]
    assert postinst("configure") == ["daemon-reload"]
    assert postinst("configure", "0.0.1", systemd=False) == []
    assert_settings_file_is_private()


def test_debian_package_installs_runs_and_purges(tmp_path):
    if os.geteuid() != 0 or not shutil.which("dpkg-deb"):
        pytest.skip("installing a package needs root and dpkg")
    # One such test at a time on a machine: two suites (two checkouts) installing and purging
    # the one package `assetd` at once undo each other's steps.
    with open("/tmp/assetd-package-test.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        package_installs_runs_and_purges(tmp_path)


def package_installs_runs_and_purges(tmp_path):
    if run(["dpkg-query", "-W", "-f=${Status}", "assetd"]).stdout.startswith("install ok"):
        pytest.skip("an assetd package is already installed here; not touching it")
    state_existed = os.path.exists("/var/lib/assetd")
    group_existed = group_members("assetd-web") is not None
    built = run([os.path.join(ROOT, "scripts", "package"), "--binary", assetd_bin(), "--out", str(tmp_path)], timeout=300, check=True)
    deb = built.stdout.strip().splitlines()[-1]
    assert deb.endswith("_amd64.deb") and os.path.exists(deb)
    depends = {d.split()[0] for d in run(["dpkg-deb", "-f", deb, "Depends"], check=True).stdout.replace("|", ",").split(",") if d.strip()}
    needed = packages_the_binaries_need()
    assert {"libpq5", "libfcgi0ldbl", "libcurl4", "libssl3", "libmagic1", "libvips42"} <= needed, needed
    assert needed <= depends, f"Depends lacks {sorted(needed - depends)}"
    assert "ca-certificates" in depends, "libcurl verifies S3's certificate against them"
    # The files the administrator edits are no conffiles (their edits would stop a
    # non-interactive upgrade at dpkg's prompt); the snippets that hold no choice are.
    conffiles = run(["dpkg-deb", "-I", deb, "conffiles"], check=True).stdout.split()
    assert "/etc/nginx/snippets/assetd-fastcgi.conf" in conffiles, conffiles
    assert "/etc/nginx/snippets/assetd-fastcgi-pass.conf" in conffiles, conffiles
    for edited in ADMINISTRATORS_FILES:
        assert edited not in conffiles, conffiles
    try:
        run(["dpkg", "-i", deb], timeout=120, check=True)
        assert run(["id", "-u", "assetd"]).returncode == 0
        run(["/usr/bin/assetd", "--help"], env={"PATH": "/usr/bin:/bin"}, check=True)
        # postinst made the administrator's files from the templates, the settings private.
        for edited in ADMINISTRATORS_FILES:
            assert os.path.isfile(edited), edited
        assert_settings_file_is_private()
        # The shipped settings are all commented out: check-config names what is missing.
        pristine = run(["/usr/bin/assetd", "check-config", "--config", "/etc/assetd/assetd.env"], env={"PATH": "/usr/bin:/bin"})
        assert pristine.returncode != 0 and "FAIL settings:" in pristine.stdout and "required" in pristine.stdout
        configured = run(["/usr/bin/assetd", "check-config", "--config", os.environ["ASSETD_ENV_FILE"]], env={"PATH": "/usr/bin:/bin"})
        assert configured.returncode == 0, configured.stdout
        # The state directory exists before the first start (postinst), the service's own.
        info = os.stat("/var/lib/assetd")
        assert (info.st_uid, info.st_gid) == (pwd.getpwnam("assetd").pw_uid, grp.getgrnam("assetd").gr_gid)
        assert stat.S_IMODE(info.st_mode) == 0o700, oct(info.st_mode)
        # The socket's group (issue 17): a group of its own, made by postinst, that only
        # nginx's user joins, so that no other www-data process (a PHP-FPM pool) may speak
        # FastCGI to assetd around nginx; and the group the installed socket unit names.
        assert_socket_group_is_nginx_alone()
        # check-config as the service's user, with the guide's database path, before any start.
        readable = tempfile.mkdtemp(prefix="assetd-first-start-")  # pytest's tmp_path is root's only
        os.chmod(readable, 0o755)
        env_copy = Path(readable) / "first-start.env"
        settings = read_env_file(os.environ["ASSETD_ENV_FILE"])
        for key in ("ASSETD_SOCKET", "ASSETD_SOCKET_MODE", "ASSETD_STATE_DIR"):
            settings.pop(key, None)
        settings["ASSETD_DATABASE"] = "/var/lib/assetd/assetd.sqlite"
        env_copy.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        os.chmod(env_copy, 0o644)
        first = run([shutil.which("runuser") or "/usr/sbin/runuser", "-u", "assetd", "--", "/usr/bin/assetd", "check-config", "--config", str(env_copy)],
                    env={"PATH": "/usr/bin:/bin"})
        assert "OK   database: /var/lib/assetd/assetd.sqlite will be created" in first.stdout, first.stdout
        assert "OK   spool directory: /var/lib/assetd/tmp will be created" in first.stdout, first.stdout
        shutil.rmtree(readable)
        # The resolved Swift dependencies the binary was built against are recorded.
        listing = run(["dpkg", "-L", "assetd"], check=True).stdout
        assert "/usr/share/doc/assetd/DEPENDENCIES" in listing
        recorded = open("/usr/share/doc/assetd/DEPENDENCIES").read()
        assert "swift-log 1.16.2" in recorded and "GRDB.swift 7.10.0" in recorded, recorded
        assert os.path.exists("/usr/share/doc/assetd/Package.resolved")
        # The documentation the units and the guide point at: the README and all of docs/.
        for page in ["README.md"] + sorted(os.listdir(os.path.join(ROOT, "docs"))):
            assert f"/usr/share/doc/assetd/{page}" in listing, page
        # The guide's step: enable the site. Removing the package must take the link with it,
        # or nginx -t fails on a dangling include; so must a purge after a reinstall.
        if os.path.isdir("/etc/nginx/sites-enabled"):
            link = "/etc/nginx/sites-enabled/assetd"
            os.symlink("/etc/nginx/sites-available/assetd", link)
            run(["dpkg", "--remove", "assetd"], timeout=120, check=True)
            assert not os.path.lexists(link), "dpkg --remove left the sites-enabled link"
            run(["dpkg", "-i", deb], timeout=120, check=True)
            os.symlink("../sites-available/assetd", link)
            run(["dpkg", "--purge", "assetd"], timeout=120, check=True)
            assert not os.path.lexists(link), "dpkg --purge left the sites-enabled link"
            # A link of the administrator's to another file stays.
            other = "/etc/nginx/sites-enabled/assetd-test-other"
            os.symlink("/etc/nginx/sites-available/default", other)
            try:
                run(["dpkg", "-i", deb], timeout=120, check=True)
                run(["dpkg", "--purge", "assetd"], timeout=120, check=True)
                assert os.path.lexists(other)
            finally:
                os.unlink(other)
            run(["dpkg", "-i", deb], timeout=120, check=True)
            # Installed again after purges: the group is made again, www-data in it once.
            assert_socket_group_is_nginx_alone()
        # postinst again over an installed package (an upgrade): nothing doubles.
        run(["dpkg", "-i", deb], timeout=120, check=True)
        assert_socket_group_is_nginx_alone()
        upgrade_keeps_the_administrators_edits(deb, tmp_path)
        postinst_restarts_the_running_units_on_upgrade_only(deb, tmp_path)
        if shutil.which("systemd-analyze"):
            verify = run(["systemd-analyze", "verify", "/lib/systemd/system/assetd.socket", "/lib/systemd/system/assetd.service"])
            assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
        # The decoder ships too, with its units.
        for path in ("/usr/bin/assetd-thumbnailer", "/lib/systemd/system/assetd-thumbnailer.socket",
                     "/lib/systemd/system/assetd-thumbnailer.service"):
            assert os.path.exists(path), path
    finally:
        purge = run(["dpkg", "--purge", "assetd"], timeout=120)
        link = "/etc/nginx/sites-enabled/assetd"
        if os.path.islink(link) and os.readlink(link) in ("/etc/nginx/sites-available/assetd", "../sites-available/assetd"):
            os.unlink(link)  # the test's own link, should postrm have failed to remove it
        # A purge keeps /var/lib/assetd (Debian's practice); this test does not keep what it made.
        if not state_existed:
            shutil.rmtree("/var/lib/assetd", ignore_errors=True)
        group_left = group_members("assetd-web")
        if group_left is not None and not group_existed:
            run(["groupdel", "assetd-web"])  # the test's own, should postrm have left it
    assert purge.returncode == 0, purge.stderr
    assert group_left is None, f"dpkg --purge left the group assetd-web (members {group_left})"
    for path in ("/usr/bin/assetd", "/usr/bin/assetd-thumbnailer", "/etc/assetd", "/lib/systemd/system/assetd.service",
                 "/etc/nginx/sites-available/assetd", "/etc/nginx/snippets/assetd-metrics-allow.conf", "/usr/share/assetd"):
        assert not os.path.exists(path), path
