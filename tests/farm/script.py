"""Canned Device Farm conversations for the Stubber, shaped as botocore's examples-1.json and pytorch/test-infra's
device-farm-runner tests show them (the Stubber rejects any field the service model lacks)."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path
from typing import Any

from botocore.stub import ANY

from mnv2deploy.farm import aws

from .conftest import POOL_ARN, PROJECT_ARN, RUN_ARN

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
COUNTERS = {"total": 1, "passed": 1, "failed": 0, "warned": 0, "errored": 0, "stopped": 0, "skipped": 0}


def device(name: str, hexid: str, os: str = "14", availability: str = "AVAILABLE", platform: str = "ANDROID",
           manufacturer: str = "Google") -> dict[str, Any]:
    return {"arn": f"arn:aws:devicefarm:us-west-2::device:{hexid}", "name": name, "manufacturer": manufacturer,
            "model": name, "modelId": hexid[:6], "formFactor": "PHONE", "platform": platform, "os": os,
            "cpu": {"architecture": "arm64-v8a", "clock": 2900.0, "frequency": "MHz"},
            "resolution": {"width": 1080, "height": 2400}, "heapSize": 512000000, "memory": 8000000000,
            "availability": availability}


PIXEL = device("Google Pixel 8", "A0E6E6E1059E45918208DF75B2B7EF6C")
GALAXY = device("Samsung Galaxy S24", "B1F7F7F2160F56029319E086C3C8F07D", manufacturer="Samsung")


def upload_arn(i: int) -> str:
    return f"arn:aws:devicefarm:us-west-2:123456789101:upload:5e01a8c7-c861-4c0a-b1d5-5ec6e6c6dd23/0000000{i}"


def job_arn(i: int) -> str:
    return f"arn:aws:devicefarm:us-west-2:123456789101:job:5e01a8c7-c861-4c0a-b1d5-5ec6e6c6dd23/0fcac17b/0000{i}"


def customer_artifact(files: dict[str, bytes | str]) -> bytes:
    """$DEVICEFARM_LOG_DIR zipped the way the farm returns it (nested under the host's folder)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(f"Host_Machine_Files/$DEVICEFARM_LOG_DIR/{name}", data)
    return buf.getvalue()


def log_dir_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


class FarmScript:
    """Queues the responses of one run, in the order the client asks for them."""

    def __init__(self, stubber, http):
        self.s, self.http, self.uploads = stubber, http, 0

    def devices(self, *devs: dict, platform: str = "ANDROID") -> "FarmScript":
        self.s.add_response("list_devices", {"devices": list(devs)}, aws.devices_params(platform))
        return self

    def project(self, exists: bool = True) -> "FarmScript":
        projects = [{"arn": PROJECT_ARN, "name": "mnv2deploy", "created": NOW}] if exists else []
        self.s.add_response("list_projects", {"projects": projects}, {})
        if not exists:
            self.s.add_response("create_project", {"project": {"arn": PROJECT_ARN, "name": "mnv2deploy",
                                                               "defaultJobTimeoutMinutes": 30, "created": NOW}},
                                {"name": "mnv2deploy", "defaultJobTimeoutMinutes": 30})
        return self

    def pool(self, *devs: dict) -> "FarmScript":
        arns = [d["arn"] for d in devs]
        self.s.add_response("list_device_pools", {"devicePools": [
            {"arn": POOL_ARN.replace("pool0001", "curated"), "name": "Top Devices", "type": "CURATED"}]},
            {"arn": PROJECT_ARN, "type": "PRIVATE"})
        self.s.add_response("create_device_pool", {"devicePool": {
            "arn": POOL_ARN, "name": aws.pool_name(arns), "type": "PRIVATE", "maxDevices": len(arns),
            "rules": aws.pool_params(PROJECT_ARN, arns)["rules"]}}, aws.pool_params(PROJECT_ARN, arns))
        return self

    def upload(self, name: str, kind: str, fail: str | None = None) -> "FarmScript":
        self.uploads += 1
        arn = upload_arn(self.uploads)
        path = f"/uploads/{self.uploads}/{name}"
        self.s.add_response("create_upload", {"upload": {"arn": arn, "name": name, "type": kind,
                                                         "status": "INITIALIZED", "created": NOW,
                                                         "url": self.http.url(path)}},
                            aws.upload_params(PROJECT_ARN, name, kind))
        self.s.add_response("get_upload", {"upload": {"arn": arn, "name": name, "type": kind,
                                                      "status": "PROCESSING"}}, {"arn": arn})
        done = {"arn": arn, "name": name, "type": kind, "status": "FAILED" if fail else "SUCCEEDED"}
        if fail:
            done["message"] = fail
        self.s.add_response("get_upload", {"upload": done}, {"arn": arn})
        return self

    def android_uploads(self) -> "FarmScript":
        return (self.upload("android_aarch64_benchmark_model.apk", "ANDROID_APP")
                .upload("mnv2deploy-test-package.zip", "APPIUM_NODE_TEST_PACKAGE")
                .upload("mnv2deploy-test-spec.yml", "APPIUM_NODE_TEST_SPEC"))

    def schedule(self, total: int = 2, params: dict | None = None) -> "FarmScript":
        self.s.add_response("schedule_run", {"run": {"arn": RUN_ARN, "name": "mnv2deploy", "status": "SCHEDULING",
                                                     "result": "PENDING", "totalJobs": total, "created": NOW}},
                            params or {"projectArn": PROJECT_ARN, "appArn": upload_arn(self.uploads - 2),
                                       "devicePoolArn": POOL_ARN, "name": ANY,
                                       "test": {"type": "APPIUM_NODE", "testPackageArn": upload_arn(self.uploads - 1),
                                                "testSpecArn": upload_arn(self.uploads)},
                                       "executionConfiguration": {"jobTimeoutMinutes": ANY}})
        return self

    def get_run(self, status: str, result: str = "PENDING", done: int = 0, total: int = 2,
                minutes: float | None = None, message: str | None = None) -> "FarmScript":
        run: dict[str, Any] = {"arn": RUN_ARN, "name": "mnv2deploy", "type": "APPIUM_NODE", "platform": "ANDROID",
                               "status": status, "result": result, "completedJobs": done, "totalJobs": total,
                               "billingMethod": "METERED", "counters": COUNTERS, "created": NOW}
        if minutes is not None:
            run["deviceMinutes"] = {"total": minutes, "metered": minutes, "unmetered": 0.0}
        if message:
            run["message"] = message
        self.s.add_response("get_run", {"run": run}, {"arn": RUN_ARN})
        return self

    def stop(self) -> "FarmScript":
        self.s.add_response("stop_run", {"run": {"arn": RUN_ARN, "status": "STOPPING", "result": "PENDING"}},
                            {"arn": RUN_ARN})
        return self

    def jobs(self, *jobs: tuple[dict, str, str | None]) -> "FarmScript":
        self.s.add_response("list_jobs", {"jobs": [
            {"arn": job_arn(i), "name": d["name"], "type": "APPIUM_NODE", "status": "COMPLETED", "result": result,
             "counters": COUNTERS, "device": d, "deviceMinutes": {"total": 4.2, "metered": 4.2, "unmetered": 0.0},
             **({"message": message} if message else {})}
            for i, (d, result, message) in enumerate(jobs)]}, {"arn": RUN_ARN})
        return self

    def artifacts(self, i: int, customer: bytes | None, testspec: bytes | None = None) -> "FarmScript":
        found = [{"arn": job_arn(i).replace(":job:", ":artifact:") + "/1", "name": "Video", "type": "VIDEO",
                  "extension": "mp4", "url": self.http.url(f"/a/{i}/video.mp4")}]
        if customer is not None:
            found.append({"arn": job_arn(i).replace(":job:", ":artifact:") + "/2", "name": "Customer Artifacts",
                          "type": "CUSTOMER_ARTIFACT", "extension": "zip",
                          "url": self.http.serve(f"/a/{i}/customer.zip", customer)})
        if testspec is not None:
            found.append({"arn": job_arn(i).replace(":job:", ":artifact:") + "/3", "name": "TestSpec Output",
                          "type": "TESTSPEC_OUTPUT", "extension": "txt",
                          "url": self.http.serve(f"/a/{i}/testspec.txt", testspec)})
        self.s.add_response("list_artifacts", {"artifacts": found}, {"arn": job_arn(i), "type": "FILE"})
        return self
