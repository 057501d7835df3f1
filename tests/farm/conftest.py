"""Farm tier: a real boto3 devicefarm client under botocore's Stubber (every request and canned response checked
against the service model botocore ships), an HTTP server on 127.0.0.1 standing in for the presigned upload and
artifact URLs, and the loopback adb device (tests/conftest.py) for the test spec's device-side commands."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest


DUMMY_KEY, DUMMY_SECRET = "AKIAFARMTESTDUMMY0001", "farm-test-secret-never-printed"
SIGNATURE = "X-Amz-Signature=farmtestsignature0123456789"
REGION = "us-west-2"
PROJECT_ARN = "arn:aws:devicefarm:us-west-2:123456789101:project:5e01a8c7-c861-4c0a-b1d5-12345EXAMPLE"
POOL_ARN = "arn:aws:devicefarm:us-west-2:123456789101:devicepool:5e01a8c7-c861-4c0a-b1d5-12345EXAMPLE/pool0001"
RUN_ARN = "arn:aws:devicefarm:us-west-2:123456789101:run:5e01a8c7-c861-4c0a-b1d5-5ec6e6c6dd23/0fcac17b-6122-44d7"


@pytest.fixture(scope="session")
def tflite_artifact(export_artifact) -> Path:
    return export_artifact("tflite").artifact


class LoopbackHttp:
    """PUT records (method, path, headers, body) and answers 200; GET serves registered blobs; else 403/404."""

    def __init__(self) -> None:
        self.puts: list[dict] = []
        self.blobs: dict[str, bytes] = {}
        self.fail_puts = False
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_PUT(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                owner.puts.append({"method": "PUT", "path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(403 if owner.fail_puts else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                data = owner.blobs.get(self.path.split("?")[0])
                self.send_response(200 if data is not None else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        """A presigned-looking URL (its signature must never be printed or stored)."""
        return f"{self.base}{path}?AWSAccessKeyId=AKIAEXAMPLE&Expires=1472747804&{SIGNATURE}"

    def serve(self, path: str, data: bytes) -> str:
        self.blobs[path] = data
        return self.url(path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_server():
    server = LoopbackHttp()
    yield server
    server.close()


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """No credentials anywhere and no instance-metadata probe: the standard chain finds nothing."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("MNV2DEPLOY_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def stubbed(aws_env):
    """A real devicefarm client (dummy keys) under Stubber; ``calls`` records every operation it was asked for."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("devicefarm", region_name=REGION, aws_access_key_id=DUMMY_KEY,
                          aws_secret_access_key=DUMMY_SECRET)
    calls: list[str] = []
    client.meta.events.register("before-parameter-build", lambda model, **kw: calls.append(model.name))
    with Stubber(client) as stubber:
        yield client, stubber, calls


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Harness:
    """The real CLI with the farm's client under Stubber, HTTP on 127.0.0.1 and a clock that sleeping advances."""

    def __init__(self, stubbed, http, monkeypatch, capsys, tmp_path):
        from mnv2deploy.farm.aws import AwsDeviceFarm

        self.client, self.stubber, self.calls = stubbed
        self.http, self.capsys, self.tmp = http, capsys, tmp_path
        self.sleeps: list[float] = []
        self.now = 0.0
        self.poll_seconds = 30.0
        self.interrupt_at_poll: int | None = None

        def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            self.now += seconds
            if self.interrupt_at_poll is not None and self.sleeps.count(self.poll_seconds) >= self.interrupt_at_poll:
                raise KeyboardInterrupt

        def farm(name: str, **kwargs):
            return AwsDeviceFarm(client=self.client, sleep=sleep, clock=lambda: self.now,
                                 poll_seconds=self.poll_seconds, upload_poll_seconds=1)

        import mnv2deploy.farm

        monkeypatch.setattr(mnv2deploy.farm, "get_farm", farm)

    def main(self, argv: list[str]) -> tuple[int, str, str]:
        from mnv2deploy.cli.app import main

        code = main(argv)
        out, err = self.capsys.readouterr()
        return code, out, err

    def apk(self) -> Path:
        """A stand-in for LiteRT's benchmark APK in the (test) cache: its bytes only travel, nothing runs it."""
        from mnv2deploy.farm.package import cached_apk_path

        path = cached_apk_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"PK\x03\x04 stand-in for android_aarch64_benchmark_model.apk")
        return path


@pytest.fixture
def harness(stubbed, http_server, monkeypatch, capsys, tmp_path):
    return Harness(stubbed, http_server, monkeypatch, capsys, tmp_path)
