"""Our literal enum values and the dry-run plan against botocore's devicefarm service model (the Stubber checks
request shapes but skips enums)."""

import ast
import json
from pathlib import Path

import pytest

from mnv2deploy.farm import aws, package, results
from mnv2deploy.farm.base import FarmJob
from mnv2deploy.manifest import read_manifest

pytestmark = pytest.mark.farm
FARM_SRC = Path(aws.__file__).parent


@pytest.fixture(scope="module")
def model():
    import boto3

    return boto3.client("devicefarm", region_name="us-west-2", aws_access_key_id="x",
                        aws_secret_access_key="y").meta.service_model


def enum(model, shape: str) -> set[str]:
    return set(model.shape_for(shape).enum)


def test_our_literals_are_members_of_the_model_enums(model):
    assert package.TEST_TYPE in enum(model, "TestType")
    assert {package.PACKAGE_UPLOAD, package.SPEC_UPLOAD, *package.APP_UPLOAD.values()} <= enum(model, "UploadType")
    assert set(package.APP_UPLOAD) <= enum(model, "DevicePlatform")
    assert aws.AVAILABLE <= enum(model, "DeviceAvailability")
    assert {"SUCCEEDED", "FAILED"} <= enum(model, "UploadStatus")
    assert "COMPLETED" in enum(model, "ExecutionStatus")
    assert {"CUSTOMER_ARTIFACT", "TESTSPEC_OUTPUT"} <= enum(model, "ArtifactType")
    assert "FILE" in enum(model, "ArtifactCategory") and "PRIVATE" in enum(model, "DevicePoolType")
    rule = aws.pool_params(aws.PLACEHOLDER["project"], [aws.PLACEHOLDER["device"]])["rules"][0]
    assert rule["attribute"] in enum(model, "DeviceAttribute") and rule["operator"] in enum(model, "RuleOperator")
    f = aws.devices_params("ANDROID")["filters"][0]
    assert f["attribute"] in enum(model, "DeviceFilterAttribute") and f["operator"] in enum(model, "RuleOperator")


def test_every_upper_case_literal_in_the_farm_modules_is_a_model_enum_value(model):
    """A typo such as 'SUCCEDED' anywhere in the farm code fails here, not on a paid run."""
    every = set()
    for name in model.shape_names:
        every |= set(getattr(model.shape_for(name), "enum", None) or ())
    not_api = {"PUT", "GET"}  # HTTP verbs
    found = {}
    for src in sorted(FARM_SRC.glob("*.py")):
        if src.name == "__init__.py":  # only __all__ names there
            continue
        for node in ast.walk(ast.parse(src.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isupper() \
                    and node.value.replace("_", "").isalpha() and len(node.value) > 2:
                found.setdefault(node.value, src.name)
    unknown = {v: f for v, f in found.items() if v not in every and v not in not_api}
    assert not unknown, unknown
    assert {"APPIUM_NODE", "COMPLETED", "CUSTOMER_ARTIFACT", "SUCCEEDED"} <= set(found)  # the scan sees them


def _check_enums(model, shape, value, where=""):
    """Walk params against the shape and fail on any value outside an enum (what validation skips)."""
    if getattr(shape, "enum", None):
        assert value in shape.enum, f"{where}: {value!r} not in {shape.name}"
    if shape.type_name == "structure":
        for k, v in value.items():
            _check_enums(model, shape.members[k], v, f"{where}.{k}")
    elif shape.type_name == "list":
        for i, v in enumerate(value):
            _check_enums(model, shape.member, v, f"{where}[{i}]")


def test_the_dry_run_plan_validates_against_the_service_model(model, tflite_artifact, aws_env):
    from botocore.validate import ParamValidator

    job = FarmJob(tflite_artifact, read_manifest(tflite_artifact), ("Google Pixel 8", "Samsung Galaxy S24"))
    plan = aws.AwsDeviceFarm().plan(job)
    calls = [c for c in plan.api_calls if c["service"] == "devicefarm"]
    assert [c["operation"] for c in calls][:3] == ["ListDevices", "ListProjects", "CreateProject"]
    assert {"CreateUpload", "GetUpload", "ScheduleRun", "GetRun", "StopRun", "ListJobs", "ListArtifacts"} <= \
        {c["operation"] for c in calls}
    for c in calls:
        op = model.operation_model(c["operation"])
        report = ParamValidator().validate(c["params"], op.input_shape)
        assert not report.has_errors(), (c["operation"], report.generate_report())
        _check_enums(model, op.input_shape, c["params"], c["operation"])
    schedule = next(c for c in calls if c["operation"] == "ScheduleRun")["params"]
    assert schedule["test"]["type"] == "APPIUM_NODE" and schedule["executionConfiguration"] == {"jobTimeoutMinutes": 30}
    pool = next(c for c in calls if c["operation"] == "CreateDevicePool")["params"]
    assert len(json.loads(pool["rules"][0]["value"])) == 2 and pool["maxDevices"] == 2
    assert plan.estimated_device_minutes == pytest.approx(2 * (2 + 3 * (60 + 110 * 0.1) / 60), abs=0.1)


def test_a_bad_enum_value_is_caught_by_the_walk_the_validator_skips(model):
    from botocore.validate import ParamValidator

    params = aws.upload_params(aws.PLACEHOLDER["project"], "x.zip", "APPIUM_NODE_TEST_PACKAG")  # typo
    op = model.operation_model("CreateUpload")
    assert not ParamValidator().validate(params, op.input_shape).has_errors()  # botocore lets it through
    with pytest.raises(AssertionError, match="not in UploadType"):
        _check_enums(model, op.input_shape, params, "CreateUpload")


def test_state_snapshot_parser_reads_what_run_benchmark_sh_prints():
    text = ("thermal thermal_zone0 cpu-0-0 41500\r\nthermal thermal_zone1 battery 30100\n"
            "cpufreq cpu4 scaling_cur_freq 2400000\ncpufreq cpu4 scaling_governor schedutil\n"
            "  level: 87\n  temperature: 301\n")
    s = results.parse_state(text)
    assert s["thermal_max_c"] == 41.5 and s["thermal_zones"]["thermal_zone1"] == {"type": "battery", "celsius": 30.1}
    assert s["cpufreq"]["cpu4"] == {"scaling_cur_freq": "2400000", "scaling_governor": "schedutil"}
    assert s["battery_level"] == 87 and s["battery_temperature"] == 301
