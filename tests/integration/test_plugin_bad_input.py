"""Bad input never stops the plugin: malformed payloads, unknown methods,
oversized messages and clients that give up mid-call."""
import grpc
import pytest

from pluginhost.host import HEALTH_CHECK, KEYMANAGER, SERVING, CONFIG, INIT

MALFORMED = b"\x0a\x05ab"  # field 1, length 5, only 2 bytes follow


@pytest.mark.parametrize("path,name", [
    (HEALTH_CHECK, "Check"),
    (INIT + "Init", "Init"),
    (CONFIG + "Validate", "Validate"),
    (CONFIG + "Configure", "Configure"),
    (KEYMANAGER + "GenerateKey", "GenerateKey"),
    (KEYMANAGER + "GetPublicKey", "GetPublicKey"),
    (KEYMANAGER + "SignData", "SignData"),
    ("/plugin.GRPCController/Shutdown", "Shutdown"),
])
def test_malformed_payload_is_invalid_argument_and_still_serving(start_plugin, path, name):
    host = start_plugin()
    with pytest.raises(grpc.RpcError) as error:
        host.raw_unary(path, MALFORMED)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert name in error.value.details()
    assert "malformed" in error.value.details()
    assert host.health() == SERVING
    assert host.alive()


def test_unknown_method_is_unimplemented(start_plugin):
    host = start_plugin()
    for path in ("/no.Such/Method", KEYMANAGER + "DeleteKey", "/grpc.health.v1.Health/Watch"):
        with pytest.raises(grpc.RpcError) as error:
            host.raw_unary(path, b"")
        assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert host.health() == SERVING


def test_oversized_message_is_resource_exhausted(start_plugin):
    host = start_plugin()
    request = host.sign_request("x509-CA-A", b"\x00" * (5 * 1024 * 1024), "SHA256")
    with pytest.raises(grpc.RpcError) as error:
        host.call("SignData", request)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert host.health() == SERVING


def test_client_cancel_mid_call_leaks_nothing(start_plugin):
    host = start_plugin()
    futures = []
    for i in range(50):
        futures.append(host.call_future(
            "SignData", host.sign_request("x509-CA-A", bytes([i]) * 32, "SHA256")))
        futures.append(host.raw_unary_future(CONFIG + "Configure", b""))
    for future in futures:
        future.cancel()
    for future in futures:
        assert future.cancelled() or future.exception(timeout=10) is not None
    assert host.health() == SERVING
    host.shutdown()
    assert host.wait(5) == 0  # the fixture then checks stderr for sanitizer reports


def test_deadline_exceeded_calls_do_not_disturb_others(start_plugin, tmp_path):
    host = start_plugin(cwd=str(tmp_path))
    futures = [host.call_future("SignData", host.sign_request("k", b"\x01" * 32, "SHA256"),
                                timeout=0.001) for _ in range(20)]
    for future in futures:
        assert future.exception(timeout=10) is not None
    assert host.health() == SERVING
