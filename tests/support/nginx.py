"""Debian's nginx in front of a gateway, as the guide "Behind a gateway" sets it up: a site that includes
deploy/nginx/moa-gateway.conf as it is. Run in the foreground by the test, with its pid, logs and temp
files in a directory of its own, so it needs no root and leaves nothing behind."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.support.cli import free_port

NGINX = Path("/usr/sbin/nginx")  # Debian's package `nginx`, installed by `make test` when missing
SNIPPET = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "moa-gateway.conf"


def site_config(prefix: Path, port: int, gateway_port: int) -> str:
    """The whole nginx.conf: the guide's site (the upstream, a server including the snippet), with every
    path nginx writes under `prefix`. It compresses JSON and event streams, as many sites do: buffered,
    a compressed stream would arrive all at once at its end."""
    return f"""
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;
events {{ worker_connections 256; }}
http {{
    log_format moa '$remote_addr "$request" $status rid=$moa_request_id';
    access_log {prefix}/access.log moa;
    gzip on;
    gzip_types application/json text/event-stream;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;

    upstream moa_gateway {{
        server 127.0.0.1:{gateway_port};
        keepalive 16;
        keepalive_timeout 60s;
    }}
    server {{
        listen 127.0.0.1:{port};
        include {SNIPPET};
    }}
}}
"""


class Nginx:
    """`with Nginx(gateway_port) as proxy:` serves nginx at `proxy.url`, in front of the gateway."""

    def __init__(self, gateway_port: int) -> None:
        assert NGINX.exists(), "nginx is missing: `make test` installs Debian's package"
        # Under /tmp rather than pytest's (0700) tmp_path: started as root, nginx's workers run as
        # `nobody` and must reach their temp directories.
        self.prefix = Path(tempfile.mkdtemp(prefix="moa-nginx-"))
        self.prefix.chmod(0o755)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (self.prefix / "nginx.conf").write_text(site_config(self.prefix, self.port, gateway_port))
        self._process: subprocess.Popen[bytes] | None = None

    def access_log(self) -> str:
        return (self.prefix / "access.log").read_text()

    def __enter__(self) -> Nginx:
        command = [str(NGINX), "-p", f"{self.prefix}/", "-e", f"{self.prefix}/error.log"]
        command += ["-c", f"{self.prefix}/nginx.conf", "-g", "daemon off;"]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    raise RuntimeError(f"nginx did not start: {self._error_log()}") from None
                time.sleep(0.02)

    def _error_log(self) -> str:
        log = self.prefix / "error.log"
        return log.read_text()[-2000:] if log.exists() else ""

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)  # fast shutdown: open streams are not waited for
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self.prefix, ignore_errors=True)
