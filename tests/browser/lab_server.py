"""A throwaway JupyterLab server for the browser test: 127.0.0.1, a free port, a token, fresh
settings / workspace / home directories, stopped by its own process id."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# JupyterLab user settings the test needs. Without autoStartDefaultKernel a "Select Kernel"
# dialog blocks the page; windowing "none" keeps every cell in the DOM (no lazy rendering);
# the news / update checks would reach for the network.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings":
        {"autoStartDefaultKernel": True, "windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
}
# a direct opener: a proxy from the environment must never see the loopback requests
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class LabServer:
    """A running server: its process, address and token, and the log it writes."""

    process: subprocess.Popen
    port: int
    token: str
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """The URL of `path` (e.g. "lab/tree/x.ipynb") with the token."""
        return f"{self.base_url}/{path.lstrip('/')}?token={self.token}"

    def api(self, path: str, method: str = "GET") -> object:
        """Call the server's REST API; returns the decoded JSON (None for an empty reply)."""
        request = urllib.request.Request(self.url(f"api/{path}"), method=method)
        with _OPENER.open(request, timeout=30) as reply:
            body = reply.read()
        return json.loads(body) if body else None

    def log_tail(self, n_chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n_chars:] if self.log.exists() else ""


def free_port() -> int:
    """A TCP port nobody listens on right now (the server is told not to try others)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_settings(settings_dir: Path) -> None:
    """Write LAB_SETTINGS as JupyterLab user settings under `settings_dir`."""
    for name, values in LAB_SETTINGS.items():
        path = settings_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def server_env(state: Path) -> dict[str, str]:
    """The server's environment: fresh home, config, runtime and settings dirs under `state`."""
    dirs = {"HOME": "home", "IPYTHONDIR": "ipython", "JUPYTER_CONFIG_DIR": "config",
            "JUPYTER_DATA_DIR": "data", "JUPYTER_RUNTIME_DIR": "runtime", "MPLCONFIGDIR": "mpl",
            "JUPYTERLAB_SETTINGS_DIR": "lab-settings", "JUPYTERLAB_WORKSPACES_DIR": "lab-workspaces"}
    env = dict(os.environ)
    for var, name in dirs.items():
        env[var] = str(state / name)
        (state / name).mkdir(parents=True, exist_ok=True)
    write_settings(state / "lab-settings")
    env["LORA_LAB_OFFLINE"] = "1"  # the kernels inherit it: notebooks must run without a network
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_server(root: Path, state: Path, timeout: float = 180.0) -> LabServer:
    """Start JupyterLab serving `root`; return once its REST API answers."""
    port, token = free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = state / "jupyterlab.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(cmd, env=server_env(state), cwd=root, stdin=subprocess.DEVNULL,
                                   stdout=sink, stderr=subprocess.STDOUT)
    server = LabServer(process, port, token, log)
    try:
        _wait_until_up(server, timeout)
    except BaseException:
        stop_server(server)
        raise
    return server


def _wait_until_up(server: LabServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            server.api("status")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer within {timeout:.0f} s:\n{server.log_tail()}")


def shutdown_kernels(server: LabServer) -> None:
    """Ask the server to shut down every kernel it started (each by its id)."""
    for kernel in server.api("kernels"):
        try:
            server.api(f"kernels/{kernel['id']}", method="DELETE")
        except urllib.error.URLError:
            pass  # already gone


def stop_server(server: LabServer, grace: float = 30.0) -> None:
    """Stop the kernels, then the server by its own process id: terminate, wait, kill."""
    if server.process.poll() is None:
        try:
            shutdown_kernels(server)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass  # the server may not be answering; terminating it still stops its kernels
        server.process.terminate()
        try:
            server.process.wait(grace)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(grace)
