"""The services SPIRE calls through the plugin face: Init, Health, the broker
and stdio streams, Config (Validate/Configure plumbing) and the KeyManager
methods before any configuration."""
import grpc
import pytest

from pluginhost.host import SERVING
from spire.plugin.server.keymanager.v1 import keymanager_pb2 as km_pb2

KEYMANAGER = "spire.plugin.server.keymanager.v1.KeyManager"
CONFIG = "spire.service.common.config.v1.Config"
OFFLINE_ENV = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example-secret",
               "AWS_EC2_METADATA_DISABLED": "true"}


def test_init_advertises_keymanager_and_config(start_plugin):
    host = start_plugin()
    assert host.init() == [KEYMANAGER, CONFIG]
    host.deinit()


def test_health_serving_for_plugin_and_empty_name(start_plugin):
    host = start_plugin()
    assert host.health("plugin") == SERVING
    assert host.health("") == SERVING
    with pytest.raises(grpc.RpcError) as error:
        host.health("some.other.Service")
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_broker_and_stdio_streams_stay_open_until_shutdown(start_plugin):
    host = start_plugin()
    host.init()
    for _ in range(20):
        assert host.health() == SERVING
    assert host.broker_open() and host.stdio_open()
    assert host.broker_status(timeout=0.3) is None  # still open
    host.shutdown()
    assert host.broker_status(timeout=5) == grpc.StatusCode.OK
    assert host.stdio_status(timeout=5) == grpc.StatusCode.OK
    assert host.wait(5) == 0


def test_broker_accepts_more_conn_info(start_plugin):
    from goplugin.broker import goplugin_broker_pb2 as broker_pb2
    host = start_plugin()
    host.send_broker_message(broker_pb2.ConnInfo(service_id=2, network="unix", address="/x"))
    assert host.health() == SERVING
    assert host.broker_open()


def test_validate_and_configure_agree(start_plugin, tmp_path):
    host = start_plugin(extra_env=OFFLINE_ENV, cwd=str(tmp_path))
    text = "this is { not hcl"
    valid, notes = host.validate(text)
    assert valid == (notes == [])
    if valid:
        host.configure(text)  # a configuration that accepts anything
    else:
        with pytest.raises(grpc.RpcError) as error:
            host.configure(text)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.value.details() == "; ".join(notes)


def test_validate_accepts_spires_rendering(start_plugin, tmp_path):
    host = start_plugin(extra_env=OFFLINE_ENV, cwd=str(tmp_path))
    text = 'region = "us-east-2"\n\nkey_metadata_file = "./key_metadata"'
    assert host.validate(text) == (True, [])


def emulator_config(kms, extra=""):
    text = (f'region = "us-east-2"\n\nkey_metadata_file = "./key_metadata"\n\n'
            f'endpoint = "{kms.url}"')
    return text + ("\n\n" + extra if extra else "")


def test_configure_applies_log_level_and_logs_each_rpc(start_plugin, kms, tmp_path):
    host = start_plugin(extra_env=dict(kms.plugin_env(), AWS_ENDPOINT_URL=kms.url), cwd=str(tmp_path))
    host.configure(emulator_config(kms, 'log_level = "debug"'))
    host.health()
    host.shutdown()
    assert host.wait(5) == 0
    host.drain_output()
    rpc_records = [r for r in host.log_records()
                   if isinstance(r, dict) and r.get("@message") == "rpc"]
    by_method = {r["method"]: r for r in rpc_records}
    check = by_method["/grpc.health.v1.Health/Check"]
    assert check["@level"] == "debug" and check["code"] == "0"
    assert int(check["duration_us"]) >= 0
    assert by_method["/plugin.GRPCController/Shutdown"]["code"] == "0"
    for record in rpc_records:  # method, status and duration only: no payloads
        assert set(record) == {"@level", "@message", "@module", "@timestamp", "method", "code",
                               "duration_us"}


def test_configure_failure_in_the_keymanager_passes_through(start_plugin, kms, tmp_path):
    host = start_plugin(extra_env={"AWS_ACCESS_KEY_ID": "AKIDUNKNOWN",
                                   "AWS_SECRET_ACCESS_KEY": "not-the-emulators-secret",
                                   "AWS_ENDPOINT_URL": kms.url},
                        cwd=str(tmp_path))
    with pytest.raises(grpc.RpcError) as error:
        host.configure(emulator_config(kms))
    assert error.value.code() not in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT)
    assert error.value.details()
    assert "not-the-emulators-secret" not in error.value.details()


@pytest.mark.parametrize("method,request_message", [
    ("GenerateKey", km_pb2.GenerateKeyRequest(key_id="x509-CA-A", key_type=1)),
    ("GetPublicKey", km_pb2.GetPublicKeyRequest(key_id="x509-CA-A")),
    ("GetPublicKeys", km_pb2.GetPublicKeysRequest()),
    ("SignData", km_pb2.SignDataRequest(key_id="x509-CA-A", data=b"\x01" * 32,
                                        hash_algorithm=5)),
])
def test_keymanager_before_configure_is_failed_precondition(start_plugin, method,
                                                             request_message):
    host = start_plugin()
    with pytest.raises(grpc.RpcError) as error:
        host.call(method, request_message)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not configured" in error.value.details()
    assert host.health() == SERVING
