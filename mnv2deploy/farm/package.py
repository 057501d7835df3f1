"""What a farm run uploads: the test package (zip), the test spec (YAML) and the app.

Android: the package holds the model, LiteRT's ``benchmark_model`` (the same runner ``bench --device pixel``
pushes) and ``android_bench/run_benchmark.sh`` with its helper; the spec runs that script on the farm's host
against the phone over adb (``-s $DEVICEFARM_DEVICE_UDID``) and leaves the raw output in ``$DEVICEFARM_LOG_DIR``,
which the farm returns as the CUSTOMER_ARTIFACT zip. The package is uploaded as an Appium Node package (the type
ExecuTorch used for custom specs), so it also carries a minimal ``npm pack`` tarball. iOS: the package is the
``.xctestrun`` zip built from ios_bench/ on a Mac; the spec runs ``xcodebuild test-without-building`` and
``xcresulttool``. Everything here is deterministic (golden-file tested) and needs no network.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable

from ..errors import BadInputError, MissingToolError, UsageError
from ..fileio import atomic_path, sha256_file
from ..weights import cache_dir

TEST_TYPE = "APPIUM_NODE"  # custom environment: the spec's commands are what runs
PACKAGE_UPLOAD = "APPIUM_NODE_TEST_PACKAGE"
SPEC_UPLOAD = "APPIUM_NODE_TEST_SPEC"
APP_UPLOAD = {"ANDROID": "ANDROID_APP", "IOS": "IOS_APP"}
APK_NAME = "android_aarch64_benchmark_model.apk"
APK_URL = ("https://storage.googleapis.com/tensorflow-nightly-public/prod/tensorflow/release/lite/tools/nightly/"
           "latest/android_aarch64_benchmark_model.apk")
COOLDOWN_S = 60  # idle seconds before each benchmark_model invocation (ExecuTorch waited 180 s once)
REPEATS = 3  # invocations per phone: their spread is reported, not hidden
NPM_STUB = "mnv2deploy-farm-0.1.0.tgz"
ANDROID_BENCH = Path(__file__).resolve().parents[2] / "android_bench"
IOS_COMPUTE_UNITS = "all"
IOS_RESULT = "mnv2bench.xcresult"
IOS_METRICS = "metrics.json"
IOS_MODEL = "Model.mlpackage"
ZIP_TIME = (2020, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class PackageFile:
    """One file of the test package (``name`` inside the zip) or an upload of its own (``role`` app)."""
    role: str  # model, runner, script, npm-stub, app, xctestrun
    name: str
    path: Path | None  # None for generated files
    data: bytes | None = None  # generated content

    @property
    def present(self) -> bool:
        return self.data is not None or (self.path is not None and self.path.exists())

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()

    def describe(self) -> dict:
        d: dict = {"role": self.role, "name": self.name, "path": str(self.path) if self.path else None,
                   "present": self.present}
        if self.present:
            d["bytes"] = len(self.data) if self.data is not None else self.path.stat().st_size  # type: ignore
            d["sha256"] = sha256_file(self.path) if self.data is None else _sha(self.data)  # type: ignore
        return d


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def cached_apk_path() -> Path:
    return cache_dir() / "android" / APK_NAME


def npm_stub() -> bytes:
    """What ``npm pack`` makes of an empty package: Appium Node packages are a zip around such a tarball."""
    meta = json.dumps({"name": "mnv2deploy-farm", "version": "0.1.0", "private": True,
                       "description": "carrier for mnv2deploy's custom Device Farm test spec"}, indent=2).encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("package/package.json")
        info.size, info.mode, info.mtime = len(meta), 0o644, 0
        tar.addfile(info, io.BytesIO(meta))
    return gzip.compress(raw.getvalue(), mtime=0)


def android_files(artifact: Path, runner: Path) -> list[PackageFile]:
    return [PackageFile("model", "model.tflite", Path(artifact)),
            PackageFile("runner", "benchmark_model", Path(runner)),
            PackageFile("script", "run_benchmark.sh", ANDROID_BENCH / "run_benchmark.sh"),
            PackageFile("script", "big_cores_mask.sh", ANDROID_BENCH / "big_cores_mask.sh"),
            PackageFile("npm-stub", NPM_STUB, None, npm_stub())]


def _scalar(line: str) -> str:
    """A plain YAML scalar when that reads back unchanged, else a double-quoted one (JSON's escaping is YAML's)."""
    plain = not (": " in line or " #" in line or line[:1] in "!&*{}[],#|>@`'\"%-?:" or line != line.strip())
    return line if plain else json.dumps(line)


def _block(lines: Iterable[str]) -> str:
    return "".join(f"      - {_scalar(line)}\n" for line in lines)


def _spec(host: str | None, install: list[str], pre: list[str], test: list[str], post: list[str]) -> str:
    head = "version: 0.1\n\n" + (f"android_test_host: {host}\n\n" if host else "")
    phases = "".join(f"  {name}:\n    commands:\n{_block(cmds)}" for name, cmds in
                     (("install", install), ("pre_test", pre), ("test", test), ("post_test", post)))
    return head + "phases:\n" + phases + "\nartifacts:\n  - $DEVICEFARM_LOG_DIR\n"


def android_spec(threads: int, runs: int, warmup: int, repeats: int = REPEATS, cooldown_s: int = COOLDOWN_S,
                 interpreter: str | None = None) -> str:
    """The custom test spec; each command is one line (the farm runs them in one shell session, in order)."""
    adb = "adb -s $DEVICEFARM_DEVICE_UDID"
    env = (f"RUNNER=./benchmark_model WARMUP={warmup} REPEATS={repeats} COOLDOWN={cooldown_s} "
           + (f"INTERPRETER={interpreter} " if interpreter else "") + "OUT_DIR=$DEVICEFARM_LOG_DIR")
    return _spec(
        "amazon_linux_2",
        install=["adb version"],
        pre=["mkdir -p $DEVICEFARM_LOG_DIR",
             f"{adb} shell getprop ro.product.model > $DEVICEFARM_LOG_DIR/device.txt",
             f"{adb} shell getprop ro.build.version.release >> $DEVICEFARM_LOG_DIR/device.txt",
             f"{adb} shell getprop ro.product.cpu.abi >> $DEVICEFARM_LOG_DIR/device.txt"],
        test=[f"cd $DEVICEFARM_TEST_PACKAGE_PATH && {env} sh ./run_benchmark.sh model.tflite {threads} {runs} "
              "$DEVICEFARM_DEVICE_UDID"],
        post=["ls -l $DEVICEFARM_LOG_DIR"])


def ios_spec(compute_units: str = IOS_COMPUTE_UNITS) -> str:
    from ..ios.bench import TEST_TARGET

    only = " ".join(f"-only-testing:{TEST_TARGET}/{TEST_TARGET}/test{phase}_{compute_units}"
                    for phase in ("Load", "Predict"))
    bundle = f"$DEVICEFARM_LOG_DIR/{IOS_RESULT}"
    return _spec(
        None,
        install=["xcodebuild -version"],
        pre=["mkdir -p $DEVICEFARM_LOG_DIR", "ls $DEVICEFARM_TEST_PACKAGE_PATH"],
        test=["xcodebuild test-without-building -xctestrun \"$(ls $DEVICEFARM_TEST_PACKAGE_PATH/*.xctestrun | "
              f"head -n 1)\" -destination id=$DEVICEFARM_DEVICE_UDID -resultBundlePath {bundle} {only}",
              f"xcrun xcresulttool get test-results metrics --path {bundle} > $DEVICEFARM_LOG_DIR/{IOS_METRICS}"],
        post=["ls -l $DEVICEFARM_LOG_DIR"])


def write_zip(files: list[PackageFile], final: Path) -> Path:
    """A zip with fixed timestamps (the same inputs give the same bytes), written atomically."""
    with atomic_path(final) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for f in files:
                info = zipfile.ZipInfo(f.name, ZIP_TIME)
                info.external_attr = (0o755 if f.role in ("runner", "script") else 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, f.read())
    return final


# ---- iOS: the .xctestrun zip built on a Mac ----

def _zip_tree_sha(z: zipfile.ZipFile, prefix: str) -> str:
    """sha256 of the files under ``prefix`` in the zip, the way fileio.sha256_file hashes a directory."""
    import hashlib

    h = hashlib.sha256()
    members = [i for i in z.infolist() if i.filename.startswith(prefix) and not i.is_dir()]
    for info in sorted(members, key=lambda i: PurePosixPath(i.filename[len(prefix):]).parts):
        h.update(info.filename[len(prefix):].encode() + b"\0")
        with z.open(info) as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def check_xctestrun(zip_path: Path, artifact_sha256: str) -> tuple[str, str | None]:
    """(the .xctestrun file name, the test runner .app folder or None); the zip must hold this very model."""
    hint = "build it on a Mac from ios_bench/ with the model staged (docs/farm.md, 'iOS')"
    try:
        z = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as e:
        raise BadInputError(f"--xctestrun {zip_path} is not a zip ({e})", hint) from None
    with z:
        names = z.namelist()
        runs = [n for n in names if n.endswith(".xctestrun") and "/" not in n.strip("/")]
        if not runs:
            raise BadInputError(f"--xctestrun {zip_path.name} has no .xctestrun file at its top level", hint)
        models = sorted({n[:n.index(IOS_MODEL) + len(IOS_MODEL) + 1] for n in names if f"/{IOS_MODEL}/" in n})
        if not models:
            raise BadInputError(f"--xctestrun {zip_path.name} holds no {IOS_MODEL}", hint)
        if not any(_zip_tree_sha(z, m) == artifact_sha256 for m in models):
            raise BadInputError(f"the {IOS_MODEL} in {zip_path.name} is not this artifact (sha256 differs)",
                                "rebuild the xctestrun zip with this .mlpackage staged")
        apps = sorted({n.split(".app/")[0] + ".app" for n in names if "-Runner.app/" in n})
    return runs[0], apps[0] if apps else None


def ipa_from_xctestrun(zip_path: Path, app_dir: str, final: Path) -> Path:
    """The test runner app of the zip as an .ipa (Payload/X.app), for the IOS_APP upload a run needs."""
    name = PurePosixPath(app_dir).name
    with zipfile.ZipFile(zip_path) as src, atomic_path(final) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as out:
            for info in src.infolist():
                if info.filename.startswith(app_dir + "/") and not info.is_dir():
                    target = _copy_info(f"Payload/{name}/{info.filename[len(app_dir) + 1:]}", info)
                    out.writestr(target, src.read(info))
    return final


def _copy_info(name: str, src: zipfile.ZipInfo) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, ZIP_TIME)
    info.external_attr, info.compress_type = src.external_attr, zipfile.ZIP_DEFLATED
    return info


def resolve_app(platform: str, app: Path | None) -> PackageFile:
    """--app, else (Android) LiteRT's benchmark APK from the cache; a missing file is reported at run time."""
    if app is not None:
        app = Path(app)
        if not app.is_file():
            raise BadInputError(f"--app {app} does not exist", "pass an .apk (Android) or .ipa (iOS)")
        want = ".apk" if platform == "ANDROID" else ".ipa"
        if app.suffix.lower() != want:
            raise UsageError(f"--app {app.name} is not an {want} file", f"{platform.lower()} runs need an {want}")
        return PackageFile("app", app.name, app)
    if platform == "ANDROID":
        return PackageFile("app", APK_NAME, cached_apk_path())
    return PackageFile("app", "MNV2BenchRunner.ipa", None)  # made from the xctestrun zip at run time


def require_present(files: list[PackageFile]) -> None:
    for f in files:
        if f.present:
            continue
        if f.role == "app":
            raise MissingToolError(f"no LiteRT benchmark APK at {f.path} (Device Farm needs an app upload)",
                                   f"download {APK_URL} to {f.path} or pass --app PATH; nothing is fetched at "
                                   "run time")
        raise MissingToolError(f"{f.role} {f.name} missing: {f.path}", "see docs/farm.md")
