"""pytest fixtures for the KMS emulator.

kms          an in-process Emulator (function-scoped, starts in milliseconds):
             kms.url is the plugin's `endpoint`, kms.plugin_env() its AWS_*
             environment; every control method of emulator.kms_emulator.Emulator.
kms_process  the emulator as a separate process (emulator_process.EmulatorProcess):
             same URLs and plugin_env(); control methods take keyword arguments.
kms_client   a boto3 KMS client for `kms` (no retries, so faults show).
kms_unchecked_client  the same without botocore's client-side parameter
             checks, to send what the emulator must reject.
"""
import pytest

from emulator.emulator_process import EmulatorProcess
from emulator.kms_emulator import Emulator


@pytest.fixture
def kms():
    emulator = Emulator().start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def kms_process():
    process = EmulatorProcess()
    try:
        yield process
    finally:
        process.stop()


def boto3_client(service, emulator, parameter_validation=True, **overrides):
    """A boto3 client for the emulator, default credentials, no retries."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"total_max_attempts": 1, "mode": "standard"},
                    parameter_validation=parameter_validation)
    settings = {"endpoint_url": emulator.url, "region_name": "us-east-2",
                "aws_access_key_id": emulator.access_key_id,
                "aws_secret_access_key": emulator.secret_access_key, "config": config}
    settings.update(overrides)
    return boto3.client(service, **settings)


@pytest.fixture
def kms_client(kms):
    return boto3_client("kms", kms)


@pytest.fixture
def kms_unchecked_client(kms):
    return boto3_client("kms", kms, parameter_validation=False)
