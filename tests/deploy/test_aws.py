"""deploy/aws: cfn-lint on the CloudFormation template, shellcheck on deploy.sh, and the
template's promises that a linter cannot judge (least privilege, timeouts, alarms).

The Lambda image itself runs in tests/deploy/test_docker.py; the handler is tested
against SeaweedFS in tests/integration/test_serverless.py.
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest

from tests.deploy.conftest import DEPLOY, tool

AWS = DEPLOY / "aws"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from cfnlint.decode import cfn_yaml

    loaded: dict[str, Any] = cfn_yaml.load(str(AWS / "cloudformation.yaml"))
    return loaded


def resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]


def test_cfn_lint_finds_nothing() -> None:
    done = subprocess.run(
        [tool("cfn-lint", "pip install cfn-lint"), str(AWS / "cloudformation.yaml")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done.stdout


def test_deploy_script_passes_shellcheck_and_explains_itself() -> None:
    script = AWS / "deploy.sh"
    done = subprocess.run(
        [tool("shellcheck", "apt install shellcheck"), "-x", str(script)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
    usage = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert usage.returncode == 0 and "cloudformation deploy" not in usage.stdout
    assert "STACK_NAME" in usage.stdout and "ParameterName=value" in usage.stdout
    text = script.read_text()
    for step in ("aws ecr get-login-password", "docker push", "aws cloudformation deploy"):
        assert step in text, step


def test_bucket_is_private_and_encrypted(template: dict[str, Any]) -> None:
    (bucket,) = resources(template, "AWS::S3::Bucket")
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    (notice,) = bucket["NotificationConfiguration"]["QueueConfigurations"]
    assert notice["Queue"] == {"Fn::GetAtt": ["Queue", "Arn"]}


def test_queue_outlasts_the_function_and_dead_letters(template: dict[str, Any]) -> None:
    for minutes, times in template["Mappings"]["Timeouts"].items():
        assert times["Seconds"] == int(minutes) * 60 <= 900
        assert times["Visibility"] >= 6 * times["Seconds"], minutes
        # Audio the timeout cannot finish is refused at once (a failed result with the
        # reason), not run into the timeout on every delivery: at most 0.25 of real time.
        assert 0 < 0.25 * int(times["MaxAudio"]) <= times["Seconds"], minutes
    (function,) = resources(template, "AWS::Lambda::Function")
    limit = function["Environment"]["Variables"]["TRANSCRIBER_MAX_DURATION_S"]
    assert limit == {"Fn::FindInMap": ["Timeouts", {"Ref": "TimeoutMinutes"}, "MaxAudio"]}
    queue = template["Resources"]["Queue"]["Properties"]
    assert queue["VisibilityTimeout"]["Fn::FindInMap"][2] == "Visibility"
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["DeadLetterQueue", "Arn"]
    }
    (function,) = resources(template, "AWS::Lambda::Function")
    assert function["Timeout"]["Fn::FindInMap"][2] == "Seconds"
    assert function["PackageType"] == "Image"
    assert {"MemorySize", "Timeout"} <= set(function)
    (mapping,) = resources(template, "AWS::Lambda::EventSourceMapping")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_role_grants_named_actions_on_named_resources(template: dict[str, Any]) -> None:
    (role,) = resources(template, "AWS::IAM::Role")
    assert "ManagedPolicyArns" not in role
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    for s in statements:
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        assert all("*" not in a for a in actions), s
        assert s["Resource"] != "*", s
    granted = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list)
                                                else [s["Action"]])}  # fmt: skip
    assert granted == {
        "s3:GetObject", "s3:ListBucket", "s3:PutObject", "sqs:ReceiveMessage",
        "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility",
        "logs:CreateLogStream", "logs:PutLogEvents",
    }  # fmt: skip


def test_alarms_watch_the_dead_letters_and_the_errors(template: dict[str, Any]) -> None:
    watched = {(a["Namespace"], a["MetricName"]) for a in
               resources(template, "AWS::CloudWatch::Alarm")}  # fmt: skip
    assert watched == {("AWS/SQS", "ApproximateNumberOfMessagesVisible"), ("AWS/Lambda", "Errors")}


def test_lambda_image_adds_the_runtime_client_to_ours() -> None:
    text = (AWS / "Dockerfile").read_text()
    assert re.search(r"^FROM \$\{TRANSCRIBER_IMAGE\}$", text, re.M)
    assert re.search(r"pip install awslambdaric==[\d.]+", text)
    assert '"-m", "awslambdaric"' in text
    handler = re.search(r'^CMD \["([\w.]+)"\]$', text, re.M)
    assert handler is not None
    module, _, name = handler.group(1).rpartition(".")
    assert callable(getattr(__import__(module, fromlist=[name]), name))
