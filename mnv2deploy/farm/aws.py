"""AWS Device Farm through boto3 (the ``farm`` extra): list phones, upload, schedule, poll, download, parse.

The request parameters of every call are built by the functions at the top, shared by ``plan`` (``--dry-run``:
no credentials, no network, no boto3 needed) and ``run``, so the plan shows exactly what a run sends. Credentials
come only from boto3's standard chain and are never read, printed or stored here; upload and artifact URLs are
presigned (the service model marks them sensitive) and are never printed or stored either. Once a run is
scheduled, any way out other than its completion (Ctrl-C, the timeout, an error) requests StopRun first.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, ClassVar

from ..bench.result import BenchResult
from ..errors import MissingToolError, UsageError
from ..fileio import ensure_writable_dir, write_text_atomic
from ..weights import cache_dir
from . import package as pkg
from .base import PRICE_PER_DEVICE_MINUTE as PRICE
from .base import FarmDevice, FarmError, FarmInterrupted, FarmJob, FarmPlan, FarmRun
from .results import android_result, ios_results, read_members

REGION = "us-west-2"  # Device Farm's only region
DEFAULT_PROJECT = "mnv2deploy"
ARN_PREFIX = "arn:aws:devicefarm:"
CONTENT_TYPE = "application/octet-stream"
THROTTLED = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
AVAILABLE = {"AVAILABLE", "HIGHLY_AVAILABLE", "BUSY"}  # BUSY: the run waits in the queue
QUEUE_MINUTES = 15  # waited beyond the job timeout for the farm to find free phones
CREDENTIALS_HINT = ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with `aws configure` / "
                    "`aws sso login`; --dry-run needs none")
# Placeholders the plan shows for what only the farm can tell (valid ARN shapes, so the plan validates).
PLACEHOLDER = {"project": f"{ARN_PREFIX}{REGION}:ACCOUNT:project:CREATED-AT-RUN-TIME",
               "pool": f"{ARN_PREFIX}{REGION}:ACCOUNT:devicepool:CREATED-AT-RUN-TIME",
               "upload": f"{ARN_PREFIX}{REGION}:ACCOUNT:upload:CREATED-AT-RUN-TIME",
               "run": f"{ARN_PREFIX}{REGION}:ACCOUNT:run:CREATED-AT-RUN-TIME",
               "device": f"{ARN_PREFIX}{REGION}::device:FOUND-BY-ListDevices"}


# ---- request parameters (shared by plan and run) ----

def devices_params(platform: str | None) -> dict[str, Any]:
    filters = [{"attribute": "PLATFORM", "operator": "EQUALS", "values": [platform]}] if platform else []
    return {"filters": filters} if filters else {}


def project_params(name: str, timeout_minutes: int) -> dict[str, Any]:
    return {"name": name, "defaultJobTimeoutMinutes": timeout_minutes}


def pool_name(arns: list[str]) -> str:
    return "mnv2deploy-" + hashlib.sha256("\n".join(sorted(arns)).encode()).hexdigest()[:12]


def pool_params(project_arn: str, arns: list[str]) -> dict[str, Any]:
    return {"projectArn": project_arn, "name": pool_name(arns),
            "description": "mnv2deploy bench: the phones named with --device",
            "rules": [{"attribute": "ARN", "operator": "IN", "value": json.dumps(sorted(arns))}],
            "maxDevices": len(arns)}


def upload_params(project_arn: str, name: str, upload_type: str) -> dict[str, Any]:
    return {"projectArn": project_arn, "name": name, "type": upload_type, "contentType": CONTENT_TYPE}


def schedule_params(project_arn: str, app_arn: str, pool_arn: str, package_arn: str, spec_arn: str, name: str,
                    timeout_minutes: int) -> dict[str, Any]:
    return {"projectArn": project_arn, "appArn": app_arn, "devicePoolArn": pool_arn, "name": name,
            "test": {"type": pkg.TEST_TYPE, "testPackageArn": package_arn, "testSpecArn": spec_arn},
            "executionConfiguration": {"jobTimeoutMinutes": timeout_minutes}}


def run_name(job: FarmJob) -> str:
    return f"mnv2deploy {Path(job.artifact).name} t{job.threads} r{job.runs}"


def _cpu(d: dict[str, Any]) -> str | None:
    cpu = d.get("cpu") or {}
    arch, clock = cpu.get("architecture"), cpu.get("clock")
    text = " ".join(p for p in (arch, f"{clock / 1000:.2f} GHz" if isinstance(clock, (int, float)) else None) if p)
    return text or None


def to_device(d: dict[str, Any]) -> FarmDevice:
    return FarmDevice(name=d.get("name", "?"), platform=d.get("platform", "?"), os=d.get("os", "?"),
                      arn=d.get("arn", ""), form_factor=d.get("formFactor"), manufacturer=d.get("manufacturer"),
                      model=d.get("model"), cpu=_cpu(d), availability=d.get("availability"))


def _os_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:4])


def pick_devices(wanted: tuple[str, ...], found: list[FarmDevice], platform: str) -> list[FarmDevice]:
    """Each --device (a name as `farm devices` prints it, or a device ARN) -> one phone of the right platform.
    Several OS versions under one name: the newest that is available."""
    picked = []
    for w in wanted:
        hits = [d for d in found if d.arn == w or d.name.lower() == w.lower()]
        if not hits:
            close = sorted(d.name for d in found if w.lower() in d.name.lower())[:5]
            raise FarmError(f"no {platform.lower()} phone named {w!r} on the farm",
                            (f"did you mean {', '.join(close)}? " if close else "")
                            + f"`mnv2deploy farm devices --platform {platform.lower()}` lists them")
        usable = [d for d in hits if d.availability in AVAILABLE or d.availability is None]
        if not usable:
            raise FarmError(f"{w} is {hits[0].availability} on the farm (device unavailable); nothing was scheduled",
                            "pick another phone (`mnv2deploy farm devices`) or try later")
        picked.append(max(usable, key=lambda d: (d.availability != "BUSY", _os_key(d.os))))
    return picked


# ---- the client ----

def make_client() -> Any:
    """A devicefarm client from boto3's standard credential chain (env, profile, SSO, instance role)."""
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError
    except ImportError:
        raise MissingToolError("boto3 is not installed (AWS Device Farm runs need it)",
                               "pip install 'mnv2deploy[farm]'") from None
    try:
        session = boto3.Session()
        credentials = session.get_credentials()
    except BotoCoreError as e:  # a named profile that does not exist, a broken config file
        raise MissingToolError(f"AWS credentials could not be loaded ({type(e).__name__})", CREDENTIALS_HINT) from None
    if credentials is None:
        raise MissingToolError("no AWS credentials found in the environment, ~/.aws or an instance role",
                               CREDENTIALS_HINT)
    return session.client("devicefarm", region_name=REGION,
                           config=Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=20,
                                         read_timeout=60))


def http_put(url: str, data: bytes, content_type: str, timeout: float = 600) -> None:
    req = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (the farm's presigned https URL)
        resp.read()


def http_get(url: str, timeout: float = 600) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
        return resp.read()


class AwsDeviceFarm:
    name: ClassVar[str] = "aws"

    def __init__(self, client: Any = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, put: Callable[..., None] = http_put,
                 get: Callable[[str], bytes] = http_get, poll_seconds: float = 30, upload_poll_seconds: float = 5,
                 max_attempts: int = 6):
        self._client = client
        self.sleep, self.clock, self.put, self.get = sleep, clock, put, get
        self.poll_seconds, self.upload_poll_seconds, self.max_attempts = poll_seconds, upload_poll_seconds, max_attempts

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client()
        return self._client

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One API call; throttling is retried with backoff, anything else is one FarmError line."""
        from botocore.exceptions import BotoCoreError, ClientError

        for attempt in range(self.max_attempts):
            try:
                return getattr(self.client, operation)(**params)
            except ClientError as e:
                err = e.response.get("Error", {})
                code, message = err.get("Code", "?"), " ".join(str(err.get("Message", "")).split())[:300]
                if code in THROTTLED and attempt + 1 < self.max_attempts:
                    self.sleep(min(2.0 ** attempt, 30.0))
                    continue
                hint = ("the farm kept throttling; wait a minute and run again" if code in THROTTLED else
                        "check the IAM policy in docs/farm.md" if code in ("AccessDeniedException",
                                                                          "UnrecognizedClientException") else None)
                raise FarmError(f"Device Farm {operation} failed: {code}: {message}", hint) from None
            except BotoCoreError as e:  # no network, DNS, TLS: name the class, never the request
                raise FarmError(f"Device Farm {operation} could not be sent ({type(e).__name__})",
                                "check the network connection to AWS") from None
        raise AssertionError("unreachable")

    # ---- phones ----
    def list_devices(self, platform: str | None = None) -> list[FarmDevice]:
        params, devices = devices_params(platform), []
        while True:
            page = self.call("list_devices", **params)
            devices += [to_device(d) for d in page.get("devices", [])]
            if not page.get("nextToken"):
                return devices
            params = {**devices_params(platform), "nextToken": page["nextToken"]}

    # ---- plan ----
    def plan(self, job: FarmJob) -> FarmPlan:
        job.validate()
        files, app = self._files(job, check=False)
        spec = self._spec(job)
        project = job.project or DEFAULT_PROJECT
        p_arn = job.project if project.startswith(ARN_PREFIX) else PLACEHOLDER["project"]
        arns = [PLACEHOLDER["device"] + f"-{i + 1}" for i in range(len(job.devices))]
        up = PLACEHOLDER["upload"]
        calls: list[dict[str, Any]] = [
            _call("ListDevices", devices_params(job.platform), "resolve each --device name to a device ARN; "
                                                               "a TEMPORARY_NOT_AVAILABLE phone stops here"),
            _call("GetProject", {"arn": p_arn}, "the project named by --project") if project.startswith(ARN_PREFIX)
            else _call("ListProjects", {}, f"find the project {project!r}; CreateProject when absent"),
        ]
        if not project.startswith(ARN_PREFIX):
            calls.append(_call("CreateProject", project_params(project, job.timeout_minutes), "only when absent"))
        calls += [
            _call("ListDevicePools", {"arn": p_arn, "type": "PRIVATE"}, "reuse the pool for the same phones"),
            _call("CreateDevicePool", pool_params(p_arn, arns), "only when absent"),
        ]
        for role, name, kind in (("app", app.name, pkg.APP_UPLOAD[job.platform]),
                                 ("test package", "mnv2deploy-test-package.zip", pkg.PACKAGE_UPLOAD),
                                 ("test spec", "mnv2deploy-test-spec.yml", pkg.SPEC_UPLOAD)):
            calls += [_call("CreateUpload", upload_params(p_arn, name, kind), f"the {role}"),
                      {"service": "https", "operation": "PUT", "target": "the presigned URL CreateUpload returns",
                       "headers": {"Content-Type": CONTENT_TYPE}, "note": f"the {role} bytes"},
                      _call("GetUpload", {"arn": up}, "polled until SUCCEEDED; FAILED stops with the farm's "
                                                      "message")]
        calls += [
            _call("ScheduleRun", schedule_params(p_arn, up, PLACEHOLDER["pool"], up, up, run_name(job),
                                                 job.timeout_minutes), "after printing the phones and the cost"),
            _call("GetRun", {"arn": PLACEHOLDER["run"]}, f"polled every {self.poll_seconds:.0f} s until COMPLETED"),
            _call("StopRun", {"arn": PLACEHOLDER["run"]}, "only on Ctrl-C, timeout or error before COMPLETED"),
            _call("ListJobs", {"arn": PLACEHOLDER["run"]}, "one job per phone"),
            _call("ListArtifacts", {"arn": PLACEHOLDER["run"].replace(":run:", ":job:"), "type": "FILE"},
                  "per job: CUSTOMER_ARTIFACT ($DEVICEFARM_LOG_DIR) and TESTSPEC_OUTPUT"),
            {"service": "https", "operation": "GET", "target": "each artifact's presigned URL",
             "note": "downloaded into the raw output folder"},
        ]
        return FarmPlan(farm=self.name,
                        devices=[{"name": d, "platform": job.platform, "arn": None,
                                  "estimated_device_minutes": round(job.minutes_per_phone(), 1)}
                                 for d in job.devices],
                        package_files=[f.describe() for f in files] + [app.describe()],
                        test_spec=spec, api_calls=calls, estimated_device_minutes=job.estimated_device_minutes())

    def _spec(self, job: FarmJob) -> str:
        if job.platform == "IOS":
            return pkg.ios_spec()
        interpreter = None
        if job.runner is not None and Path(job.runner).suffix == ".py":
            from ..android.runner import resolve_runner

            interpreter = resolve_runner(job.runner).interpreter
        return pkg.android_spec(job.threads, job.runs, job.warmup, job.repeats, job.cooldown_s, interpreter)

    def _files(self, job: FarmJob, check: bool) -> tuple[list[pkg.PackageFile], pkg.PackageFile]:
        """(files of the test package, the app upload); ``check`` raises for what is missing."""
        app = pkg.resolve_app(job.platform, job.app)
        if job.platform == "IOS":
            files = [pkg.PackageFile("xctestrun", Path(job.xctestrun).name, Path(job.xctestrun))]  # type: ignore
        else:
            from ..android.runner import cached_runner_path, resolve_runner

            runner = resolve_runner(job.runner).local if (check or job.runner) else cached_runner_path()
            files = pkg.android_files(job.artifact, runner)
        if check:
            pkg.require_present(files + ([app] if job.platform == "ANDROID" else []))
        return files, app

    # ---- run ----
    def run(self, job: FarmJob, progress: Callable[[str], None]) -> FarmRun:
        job.validate()
        _ = self.client  # credentials first: without them nothing else matters
        files, app = self._files(job, check=True)
        spec = self._spec(job)
        raw_dir = _raw_dir(job)
        ensure_writable_dir(raw_dir)
        stage = raw_dir / "upload"
        ensure_writable_dir(stage)
        if job.platform == "IOS":
            _, runner_app = pkg.check_xctestrun(Path(job.xctestrun), job.manifest.artifact_sha256)  # type: ignore
            package_path = Path(job.xctestrun)  # type: ignore[arg-type]
            if not app.present:
                if runner_app is None:
                    raise UsageError("the xctestrun zip has no *-Runner.app to make the app upload from",
                                     "pass --app APP.ipa")
                app = pkg.PackageFile("app", app.name, pkg.ipa_from_xctestrun(package_path, runner_app,
                                                                                stage / app.name))
        else:
            package_path = pkg.write_zip(files, stage / "mnv2deploy-test-package.zip")
        spec_path = stage / "mnv2deploy-test-spec.yml"
        write_text_atomic(spec_path, spec)

        phones = pick_devices(job.devices, self.list_devices(job.platform), job.platform)
        project_arn = self._project(job)
        pool_arn = self._pool(project_arn, [d.arn for d in phones])
        app_arn = self._upload(project_arn, app.path, app.name, pkg.APP_UPLOAD[job.platform], progress)  # type: ignore
        package_arn = self._upload(project_arn, package_path, "mnv2deploy-test-package.zip", pkg.PACKAGE_UPLOAD,
                                   progress)
        spec_arn = self._upload(project_arn, spec_path, "mnv2deploy-test-spec.yml", pkg.SPEC_UPLOAD, progress)

        for d in phones:
            progress(f"farm: {d.name} ({d.platform} {d.os}, {d.availability or 'availability unknown'})")
        cap = len(phones) * job.timeout_minutes
        expected = job.estimated_device_minutes()
        progress(f"farm: ~{expected:.1f} device-minutes expected (~${expected * PRICE:.2f} metered), at most {cap} "
                 f"(${cap * PRICE:.2f}) with the {job.timeout_minutes}-minute job timeout per phone")
        run = self.call("schedule_run", **schedule_params(project_arn, app_arn, pool_arn, package_arn, spec_arn,
                                                          run_name(job), job.timeout_minutes))["run"]
        run_arn = run["arn"]
        try:
            write_text_atomic(raw_dir / "run.json", json.dumps({"run_arn": run_arn,
                                                                "phones": [d.to_dict() for d in phones]}, indent=2))
        except KeyboardInterrupt:
            raise FarmInterrupted(f"interrupted; {self._stop(run_arn)} on the farm") from None
        run = self._wait(run_arn, job, progress)
        return self._collect(run, job, phones, raw_dir, progress)

    def _project(self, job: FarmJob) -> str:
        name = job.project or DEFAULT_PROJECT
        if name.startswith(ARN_PREFIX):
            return self.call("get_project", arn=name)["project"]["arn"]
        params: dict[str, Any] = {}
        while True:
            page = self.call("list_projects", **params)
            for p in page.get("projects", []):
                if p.get("name") == name:
                    return p["arn"]
            if not page.get("nextToken"):
                break
            params = {"nextToken": page["nextToken"]}
        return self.call("create_project", **project_params(name, job.timeout_minutes))["project"]["arn"]

    def _pool(self, project_arn: str, arns: list[str]) -> str:
        params: dict[str, Any] = {"arn": project_arn, "type": "PRIVATE"}
        while True:
            page = self.call("list_device_pools", **params)
            for p in page.get("devicePools", []):
                if p.get("name") == pool_name(arns):
                    return p["arn"]
            if not page.get("nextToken"):
                break
            params = {"arn": project_arn, "type": "PRIVATE", "nextToken": page["nextToken"]}
        return self.call("create_device_pool", **pool_params(project_arn, arns))["devicePool"]["arn"]

    def _upload(self, project_arn: str, path: Path, name: str, kind: str, progress: Callable[[str], None]) -> str:
        upload = self.call("create_upload", **upload_params(project_arn, name, kind))["upload"]
        data = Path(path).read_bytes()
        progress(f"farm: uploading {name} ({len(data) / 2**20:.1f} MiB, {kind})")
        try:
            self.put(upload["url"], data, CONTENT_TYPE)
        except (urllib.error.URLError, OSError) as e:  # the URL carries a signature: never in the message
            why = f"HTTP {e.code}" if isinstance(e, urllib.error.HTTPError) else type(e).__name__
            raise FarmError(f"upload of {name} failed ({why})", "check the network; run again") from None
        deadline = self.clock() + 600
        while True:
            upload = self.call("get_upload", arn=upload["arn"])["upload"]
            status = upload.get("status")
            if status == "SUCCEEDED":
                return upload["arn"]
            if status == "FAILED":
                message = " ".join(str(upload.get("message") or "no message").split())[:300]
                raise FarmError(f"Device Farm rejected the upload {name} ({kind}): {message}",
                                "nothing was scheduled; see docs/farm.md, 'Faults'")
            if self.clock() > deadline:
                raise FarmError(f"Device Farm did not process the upload {name} in 10 minutes (status {status})",
                                "nothing was scheduled; run again later")
            self.sleep(self.upload_poll_seconds)

    def _stop(self, run_arn: str) -> str:
        try:
            status = self.call("stop_run", arn=run_arn)["run"].get("status", "STOPPING")
            return f"stop requested (run {status})"
        except FarmError as e:
            return f"StopRun failed too ({e.message}); stop it in the console"

    def _wait(self, run_arn: str, job: FarmJob, progress: Callable[[str], None]) -> dict[str, Any]:
        deadline = self.clock() + (job.timeout_minutes + QUEUE_MINUTES) * 60
        seen = None
        try:
            while True:
                run = self.call("get_run", arn=run_arn)["run"]
                status = run.get("status")
                shown = (status, run.get("completedJobs"))
                if shown != seen:
                    minutes = (run.get("deviceMinutes") or {}).get("total")
                    progress(f"farm: run {status}: {run.get('completedJobs', 0)}/{run.get('totalJobs', '?')} "
                             "phones done" + (f", {minutes:.1f} device-minutes" if minutes is not None else ""))
                    seen = shown
                if status == "COMPLETED":
                    return run
                if self.clock() > deadline:
                    break
                self.sleep(self.poll_seconds)
        except KeyboardInterrupt:
            raise FarmInterrupted(f"interrupted; {self._stop(run_arn)} on the farm") from None
        except FarmError as e:  # GetRun failed for good: the run may still be going
            raise FarmError(f"{e.message}; {self._stop(run_arn)}", e.hint) from None
        raise FarmError(f"the run did not complete in {job.timeout_minutes + QUEUE_MINUTES} minutes; "
                        f"{self._stop(run_arn)}", "raise --timeout-minutes, or name fewer phones")

    def _collect(self, run: dict[str, Any], job: FarmJob, phones: list[FarmDevice], raw_dir: Path,
                 progress: Callable[[str], None]) -> FarmRun:
        by_arn = {d.arn: d for d in phones}
        results: list[BenchResult] = []
        failures: list[str] = []
        jobs = self.call("list_jobs", arn=run["arn"]).get("jobs", [])
        for j in jobs:
            dev_info = j.get("device") or {}
            device = by_arn.get(dev_info.get("arn", "")) or to_device(dev_info)
            folder = raw_dir / re.sub(r"[^A-Za-z0-9._-]+", "_", device.name)
            ensure_writable_dir(folder)
            members: dict[str, str] = {}
            kept = []
            for a in self.call("list_artifacts", arn=j["arn"], type="FILE").get("artifacts", []):
                if a.get("type") not in ("CUSTOMER_ARTIFACT", "TESTSPEC_OUTPUT") or not a.get("url"):
                    continue
                target = folder / (f"{a['type'].lower()}.{re.sub(r'[^A-Za-z0-9]', '', a.get('extension', ''))}"
                                   or "bin")
                try:
                    data = self.get(a["url"])
                except (urllib.error.URLError, OSError) as e:
                    why = f"HTTP {e.code}" if isinstance(e, urllib.error.HTTPError) else type(e).__name__
                    failures.append(f"{device.name}: artifact {a['type']} not downloaded ({why})")
                    continue
                target.write_bytes(data)
                kept.append(str(target))
                if a["type"] == "CUSTOMER_ARTIFACT":
                    members.update(read_members(target))
                else:
                    members.setdefault("testspec_output.txt", data.decode("utf-8", errors="replace"))
            raw = {"farm": "aws", "run_arn": run["arn"], "job_arn": j.get("arn"), "job_result": j.get("result"),
                   "artifacts": kept, "raw_dir": str(folder)}
            if job.platform == "IOS":
                found = ios_results(members, job.artifact, job.manifest, device, j, job.warmup, raw)
            else:
                one = android_result(members, job.artifact, job.manifest, device, j, job.threads, raw)
                found = [one] if one else []
            if found:
                results += found
                progress(f"farm: {device.name}: parsed ({j.get('result')})")
            else:
                message = " ".join(str(j.get("message") or "").split())[:200]
                failures.append(f"{device.name} gave no parsable output (job {j.get('result')}"
                                + (f": {message}" if message else "") + f"; raw output in {folder})")
        missing = [d.name for d in phones if d.arn not in {(j.get("device") or {}).get("arn") for j in jobs}]
        failures += [f"{name}: no job in the run" for name in missing]
        minutes = (run.get("deviceMinutes") or {}).get("total")
        return FarmRun(self.name, run["arn"], results, minutes, raw_dir, failures)


def _call(operation: str, params: dict[str, Any], note: str) -> dict[str, Any]:
    return {"service": "devicefarm", "operation": operation, "params": params, "note": note}


def _raw_dir(job: FarmJob) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    if job.out is not None:
        return Path(job.out) / f"farm-{stamp}"
    return cache_dir() / "farm" / "runs" / stamp
