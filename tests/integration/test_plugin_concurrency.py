"""Many calls at once: every one is answered, cheap and worker calls mixed."""
from concurrent.futures import ThreadPoolExecutor

import grpc

from pluginhost.host import SERVING


def one_call(host, index):
    kind = index % 4
    try:
        if kind in (0, 1):
            return "health", host.health()
        if kind == 2:
            host.get_public_keys()
        else:
            host.sign_data("x509-CA-A", bytes([index % 256]) * 32, hash_algorithm="SHA256")
        return "km", "OK"
    except grpc.RpcError as error:
        return "km", error.code()


def test_200_concurrent_calls_all_answered(start_plugin):
    host = start_plugin()
    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(lambda i: one_call(host, i), range(200)))
    assert len(results) == 200
    health = [value for kind, value in results if kind == "health"]
    km = [value for kind, value in results if kind == "km"]
    assert health == [SERVING] * 100
    assert km == [grpc.StatusCode.FAILED_PRECONDITION] * 100


def test_200_futures_on_one_channel(start_plugin):
    host = start_plugin()
    futures = [host.health_future() for _ in range(100)]
    futures += [host.call_future("SignData",
                                 host.sign_request("k", b"\x02" * 32, "SHA256"))
                for _ in range(100)]
    answered = 0
    for future in futures:
        error = future.exception(timeout=30)
        assert error is None or error.code() == grpc.StatusCode.FAILED_PRECONDITION
        answered += 1
    assert answered == 200
