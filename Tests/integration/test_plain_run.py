"""assetd without systemd: `assetd serve` with ASSETD_SOCKET, as docs/DEPLOY-NOTES says to
run it. The socket it makes must let nginx's group in (ASSETD_SOCKET_GROUP), and a socket
it cannot make must stop it with exit 78 and one line naming the path and the errno (libfcgi
used to exit with the errno itself: 13). Spoken to with cgi-fcgi (libfcgi-bin), as nginx's
user."""
import grp
import os
import pwd
import shutil
import stat
import signal
import subprocess
import tempfile
import time

import pytest

from private_assetd import PrivateAssetd
from conftest import read_env_file


def cgi_fcgi(socket_path, uri, user=None):
    """GET `uri` over FastCGI with cgi-fcgi, as `user` (runuser) when given."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "REQUEST_METHOD": "GET", "DOCUMENT_URI": uri, "REQUEST_URI": uri,
           "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1"}
    args = ["cgi-fcgi", "-bind", "-connect", socket_path]
    if user:
        args = ["runuser", "-u", user, "--", "env"] + [f"{k}={v}" for k, v in env.items()] + args
    return subprocess.run(args, env=env, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)


def serve_env(workdir, **overrides):
    env = {"PATH": "/usr/bin:/bin", "HOME": "/root"}
    env.update(read_env_file(os.environ["ASSETD_ENV_FILE"]))
    env.update({"ASSETD_DATABASE": os.path.join(workdir, "plain.sqlite"), "ASSETD_STATE_DIR": workdir,
                "ASSETD_THREADS": "2", "ASSETD_THUMBNAILS": "off"})
    env.update(overrides)
    return env


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o755)  # nginx's user must reach the socket inside
        yield directory


def test_plain_run_socket_lets_nginx_group_in(workdir):
    if os.geteuid() != 0 or not shutil.which("cgi-fcgi") or not shutil.which("runuser"):
        pytest.skip("needs root, cgi-fcgi (libfcgi-bin) and runuser")
    try:
        nginx_user = pwd.getpwnam("www-data")
    except KeyError:
        pytest.skip("no www-data user (nginx's)")
    instance = PrivateAssetd(workdir, ASSETD_THREADS=2, ASSETD_SOCKET_GROUP="www-data", ASSETD_SOCKET_MODE="0660")
    try:
        instance.start()
        path = instance.env["ASSETD_SOCKET"]
        info = os.stat(path)
        assert stat.S_ISSOCK(info.st_mode)
        assert info.st_gid == grp.getgrnam("www-data").gr_gid, "the socket is not in nginx's group"
        assert stat.S_IMODE(info.st_mode) == 0o660, oct(info.st_mode)
        answer = cgi_fcgi(path, "/healthz", user=nginx_user.pw_name)
        out = answer.stdout.decode(errors="replace")
        assert answer.returncode == 0 and "Status: 200" in out and '"ok":true' in out.replace(" ", ""), \
            (answer.returncode, out, answer.stderr)
        # A user outside the group may not connect.
        refused = cgi_fcgi(path, "/healthz", user="nobody")
        assert "Status: 200" not in refused.stdout.decode(errors="replace")
    finally:
        instance.close()


def test_unknown_socket_group_is_a_configuration_error(workdir):
    env = serve_env(workdir, ASSETD_SOCKET=os.path.join(workdir, "a.sock"), ASSETD_SOCKET_GROUP="no-such-group-xyz")
    result = subprocess.run([os.environ["ASSETD_BIN"], "serve"], env=env, capture_output=True, timeout=30)
    assert result.returncode == 78, result.stderr
    assert b"ASSETD_SOCKET_GROUP" in result.stderr and b"no-such-group-xyz" in result.stderr


def run_until_exit(env, user=None, timeout=30):
    def drop():
        if user:
            entry = pwd.getpwnam(user)
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
    return subprocess.run([os.environ["ASSETD_BIN"], "serve"], env=env, capture_output=True, timeout=timeout,
                          preexec_fn=drop if user else None)


def test_socket_in_a_missing_directory_exits_78_with_one_line(workdir):
    path = os.path.join(workdir, "no-such-dir", "assetd.sock")
    result = run_until_exit(serve_env(workdir, ASSETD_SOCKET=path))
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 78, (result.returncode, err[-2000:])
    lines = [l for l in err.splitlines() if path in l]
    assert len(lines) == 1 and "errno 2" in lines[0] and "No such file or directory" in lines[0], err[-2000:]


def test_socket_in_a_directory_not_the_users_exits_78(workdir):
    """The case of a /run/assetd that root made: assetd, running as its own user, may not
    create its socket there."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to run assetd as another user")
    os.chmod(workdir, 0o777)  # the database and spool directory stay writable
    socket_dir = os.path.join(workdir, "run-assetd")
    os.mkdir(socket_dir, 0o755)  # root's, as /run/assetd would be
    path = os.path.join(socket_dir, "assetd.sock")
    result = run_until_exit(serve_env(workdir, ASSETD_SOCKET=path, HOME="/"), user="nobody")
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 78, (result.returncode, err[-2000:])
    lines = [l for l in err.splitlines() if path in l]
    assert len(lines) == 1 and "errno 13" in lines[0] and "Permission denied" in lines[0], err[-2000:]


def test_the_documented_recipe_as_an_unprivileged_user(workdir):
    """The notes' recipe: assetd as its own user (here nobody, in no group of nginx's), the
    socket's directory nginx's group and setgid: the socket gets www-data and nginx's user
    gets through; without the setgid directory, ASSETD_SOCKET_GROUP cannot be given: 78."""
    if os.geteuid() != 0 or not shutil.which("cgi-fcgi"):
        pytest.skip("needs root and cgi-fcgi (libfcgi-bin)")
    try:
        nobody = pwd.getpwnam("nobody")
        www = grp.getgrnam("www-data")
    except KeyError:
        pytest.skip("needs the users nobody and www-data")
    os.chmod(workdir, 0o777)  # the database and spool directory, nobody's to write
    refused_dir = os.path.join(workdir, "plain")
    os.mkdir(refused_dir, 0o755)
    os.chown(refused_dir, nobody.pw_uid, nobody.pw_gid)
    path = os.path.join(refused_dir, "assetd.sock")
    result = run_until_exit(serve_env(workdir, ASSETD_SOCKET=path, ASSETD_SOCKET_GROUP="www-data", HOME="/"), user="nobody")
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 78, (result.returncode, err[-2000:])
    assert "chown failed" in err and "errno 1" in err and "setgid" in err, err[-2000:]

    socket_dir = os.path.join(workdir, "run-assetd")
    os.mkdir(socket_dir)
    os.chown(socket_dir, nobody.pw_uid, www.gr_gid)
    os.chmod(socket_dir, 0o2750)
    path = os.path.join(socket_dir, "assetd.sock")
    env = serve_env(workdir, ASSETD_SOCKET=path, ASSETD_SOCKET_MODE="0660", ASSETD_SOCKET_GROUP="www-data", HOME="/")
    entry = pwd.getpwnam("nobody")

    def drop():
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    with open(os.path.join(workdir, "recipe.log"), "wb") as log:
        process = subprocess.Popen([os.environ["ASSETD_BIN"], "serve"], env=env, stdout=log, stderr=log, preexec_fn=drop)
    try:
        deadline = time.time() + 20

        def settled():
            # bind() makes the file before its group and mode are set: wait for both.
            if not os.path.exists(path):
                return False
            info = os.stat(path)
            return info.st_gid == www.gr_gid and stat.S_IMODE(info.st_mode) == 0o660
        while not settled():
            assert process.poll() is None, open(os.path.join(workdir, "recipe.log")).read()
            assert time.time() < deadline, ("no socket with group www-data and mode 0660", os.path.exists(path) and os.stat(path))
            time.sleep(0.05)
        answer = cgi_fcgi(path, "/healthz", user="www-data")
        assert "Status: 200" in answer.stdout.decode(errors="replace"), (answer.stdout, answer.stderr)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_unknown_settings_in_config_are_named_in_one_warning(workdir):
    """A misspelled setting is ignored, and named at start-up in one warning line, from the
    settings file and the environment alike; the test tooling's variables are not named."""
    settings = os.path.join(workdir, "assetd.env")
    with open(settings, "w") as f:
        f.write("ASSETD_THUMBNAIL_SIZ=256\n")
    env = serve_env(workdir, ASSETD_SOCKET=os.path.join(workdir, "no-such-dir", "assetd.sock"),
                    ASSETD_MAX_UPLOAD_BYTE="5", ASSETD_TEST_S3_PORT="1", ASSETD_DEV_DB="sqlite")
    result = subprocess.run([os.environ["ASSETD_BIN"], "serve", "--config", settings], env=env, capture_output=True, timeout=30)
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 78, (result.returncode, err[-2000:])
    lines = [l for l in err.splitlines() if "unknown settings" in l]
    assert len(lines) == 1 and "warning" in lines[0].lower(), err[-2000:]
    assert f"ASSETD_THUMBNAIL_SIZ (in {settings})" in lines[0] and "ASSETD_MAX_UPLOAD_BYTE (in the environment)" in lines[0], lines
    assert "ASSETD_TEST_S3_PORT" not in lines[0] and "ASSETD_DEV_DB" not in lines[0], lines
