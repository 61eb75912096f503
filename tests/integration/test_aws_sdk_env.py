"""The AWS SDK environment through the real plugin binary, started as SPIRE
starts it, against the emulator: the region from AWS_REGION,
AWS_DEFAULT_REGION or the shared config profile when plugin_data has none
(and plugin_data's winning over them); AWS_MAX_ATTEMPTS and the profile's
max_attempts bounding the attempts of SignData's KMS call; AWS_CA_BUNDLE and
the profile's ca_bundle trusted for a TLS endpoint; and Validate and
Configure refusing what the plugin cannot honour (no region from any source,
AWS_RETRY_MODE adaptive or legacy, a bad AWS_MAX_ATTEMPTS) with the
variable's name. The emulator checks each request's SigV4 region, so a
request signed for a region other than us-east-2 is refused."""
import grpc
import pytest

from keymanager_helpers import plugin_env, sign
from tls_helpers import TlsFront, make_certificate

# Nothing from the test machine's AWS set-up reaches the plugin.
CLEAN = {"AWS_REGION": None, "AWS_DEFAULT_REGION": None, "AWS_PROFILE": None,
         "AWS_CA_BUNDLE": None, "AWS_MAX_ATTEMPTS": None, "AWS_RETRY_MODE": None,
         "AWS_ENDPOINT_URL": None, "AWS_ENDPOINT_URL_KMS": None, "AWS_USE_FIPS_ENDPOINT": None,
         "AWS_CONFIG_FILE": "/nonexistent/aws-config",
         "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials"}
NO_REGION = ('no AWS region: set region in plugin_data, AWS_REGION or AWS_DEFAULT_REGION in '
             'SPIRE server\'s environment, or region in the shared config profile "default"')


def body(kms, tmp_path, extra="", endpoint=None):
    """plugin_data without region (unless extra sets it)."""
    text = (f'key_metadata_file = "{tmp_path / "key_metadata"}"\n'
            f'endpoint = "{endpoint or kms.url}"\n')
    return text + extra


def start(start_plugin, kms, tmp_path, **env):
    host = start_plugin(extra_env=plugin_env(kms, **dict(CLEAN, **env)), cwd=str(tmp_path))
    host.init()
    return host


def rpc_error(call):
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def write_profile(tmp_path, text):
    path = tmp_path / "aws-config"
    path.write_text(text)
    return str(path)


def generate_and_sign(host):
    host.generate_key("x509-CA-A", "EC_P256")
    return sign(host, "x509-CA-A", "SHA256")


# --- region ------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["AWS_REGION", "AWS_DEFAULT_REGION", "profile"])
def test_region_from_the_environment(start_plugin, kms, tmp_path, source):
    env = ({"AWS_CONFIG_FILE": write_profile(tmp_path, "[default]\nregion = us-east-2\n")}
           if source == "profile" else {source: "us-east-2"})
    host = start(start_plugin, kms, tmp_path, **env)
    assert host.validate(body(kms, tmp_path)) == (True, [])
    host.configure(body(kms, tmp_path))
    assert generate_and_sign(host).signature
    assert kms.calls("Sign") == 1


def test_region_from_a_named_profile(start_plugin, kms, tmp_path):
    profile = write_profile(tmp_path, "[default]\nregion = eu-west-1\n"
                                      "[profile spire]\nregion = us-east-2\n")
    host = start(start_plugin, kms, tmp_path, AWS_CONFIG_FILE=profile, AWS_PROFILE="spire")
    host.configure(body(kms, tmp_path))
    assert generate_and_sign(host).signature


def test_plugin_data_region_wins_over_the_environment(start_plugin, kms, tmp_path):
    host = start(start_plugin, kms, tmp_path, AWS_REGION="eu-west-1")
    host.configure(body(kms, tmp_path, 'region = "us-east-2"\n'))
    assert generate_and_sign(host).signature


def test_environment_region_is_the_one_requests_are_signed_for(start_plugin, kms, tmp_path):
    host = start(start_plugin, kms, tmp_path, AWS_REGION="eu-west-1",
                 KM_STARTUP_RETRY_MS="1000")
    error = rpc_error(lambda: host.configure(body(kms, tmp_path)))
    assert "Credential should be scoped to a valid region, not 'eu-west-1'" in error.details()
    assert kms.calls("ListAliases") >= 1


def test_no_region_from_any_source(start_plugin, kms, tmp_path):
    host = start(start_plugin, kms, tmp_path)
    assert host.validate(body(kms, tmp_path)) == (False, [NO_REGION])
    error = rpc_error(lambda: host.configure(body(kms, tmp_path)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == NO_REGION
    assert kms.calls() == {}


def test_bad_environment_region_is_named(start_plugin, kms, tmp_path):
    host = start(start_plugin, kms, tmp_path, AWS_REGION="useast2")
    valid, notes = host.validate(body(kms, tmp_path))
    assert not valid
    assert notes == ['AWS_REGION: "useast2" is not an AWS region name such as us-east-2']


# --- attempts ----------------------------------------------------------------------

@pytest.mark.parametrize("attempts_env,plugin_data,faults,ok,calls", [
    ({"AWS_MAX_ATTEMPTS": "5"}, "", 4, True, 5),
    ({"AWS_MAX_ATTEMPTS": "2"}, "", 2, False, 2),
    ({"profile": "[default]\nmax_attempts = 4\n"}, "", 3, True, 4),
    ({"AWS_MAX_ATTEMPTS": "5"}, "max_attempts = 1\n", 1, False, 1),
    ({}, "", 3, False, 3),
])
def test_attempts_per_kms_call(start_plugin, kms, tmp_path, attempts_env, plugin_data, faults,
                               ok, calls):
    env = dict(attempts_env)
    if "profile" in env:
        env = {"AWS_CONFIG_FILE": write_profile(tmp_path, env.pop("profile"))}
    host = start(start_plugin, kms, tmp_path, AWS_REGION="us-east-2", **env)
    host.configure(body(kms, tmp_path, plugin_data))
    host.generate_key("x509-CA-A", "EC_P256")
    kms.inject("Sign", "503", count=faults)
    if ok:
        assert sign(host, "x509-CA-A", "SHA256").signature
    else:
        assert rpc_error(lambda: sign(host, "x509-CA-A", "SHA256")).code() in (
            grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL)
    assert kms.calls("Sign") == calls


def test_bad_max_attempts_is_named(start_plugin, kms, tmp_path):
    host = start(start_plugin, kms, tmp_path, AWS_REGION="us-east-2", AWS_MAX_ATTEMPTS="lots")
    assert host.validate(body(kms, tmp_path)) == (
        False, ['AWS_MAX_ATTEMPTS: "lots" is not a number of attempts from 1 to 10'])


# --- retry mode --------------------------------------------------------------------

@pytest.mark.parametrize("mode,fragment", [
    ("adaptive", 'retry mode "adaptive" is not supported: the plugin retries in standard mode '
                 'only'),
    ("legacy", 'retry mode "legacy" is not supported (SPIRE\'s built-in aws_kms plugin refuses '
               'it too)'),
])
def test_unsupported_retry_modes_are_refused(start_plugin, kms, tmp_path, mode, fragment):
    host = start(start_plugin, kms, tmp_path, AWS_REGION="us-east-2", AWS_RETRY_MODE=mode)
    valid, notes = host.validate(body(kms, tmp_path))
    assert not valid and len(notes) == 1
    assert notes[0].startswith("AWS_RETRY_MODE: " + fragment)
    error = rpc_error(lambda: host.configure(body(kms, tmp_path)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and fragment in error.details()
    assert kms.calls() == {}


def test_standard_retry_mode_is_accepted(start_plugin, kms, tmp_path):
    host = start(start_plugin, kms, tmp_path, AWS_REGION="us-east-2", AWS_RETRY_MODE="standard")
    host.configure(body(kms, tmp_path))


# --- CA bundle ---------------------------------------------------------------------

@pytest.fixture
def tls_kms(kms, tmp_path):
    cert, key = make_certificate(tmp_path, "tls kms")
    front = TlsFront(kms.port, cert, key)
    try:
        yield front, cert
    finally:
        front.close()


@pytest.mark.parametrize("source", ["AWS_CA_BUNDLE", "profile"])
def test_ca_bundle_from_the_environment(start_plugin, kms, tmp_path, tls_kms, source):
    front, cert = tls_kms
    env = ({"AWS_CONFIG_FILE": write_profile(tmp_path, f"[default]\nca_bundle = {cert}\n")}
           if source == "profile" else {"AWS_CA_BUNDLE": cert})
    host = start(start_plugin, kms, tmp_path, AWS_REGION="us-east-2", **env)
    host.configure(body(kms, tmp_path, endpoint=front.url))
    assert generate_and_sign(host).signature
    assert kms.calls("Sign") == 1


def test_without_the_bundle_the_tls_endpoint_is_not_trusted(start_plugin, kms, tmp_path,
                                                            tls_kms):
    front, _ = tls_kms
    host = start(start_plugin, kms, tmp_path, AWS_REGION="us-east-2",
                 KM_STARTUP_RETRY_MS="1000")
    # One HTTP attempt per call: with the standard three, their backoff can use up the
    # one-second start-up budget, and the last attempt then ends cut by the deadline.
    error = rpc_error(lambda: host.configure(
        body(kms, tmp_path, "max_attempts = 1\n", endpoint=front.url)))
    assert "certificate" in error.details().lower()
    assert kms.calls() == {}


def test_plugin_data_ca_bundle_wins(start_plugin, kms, tmp_path, tls_kms):
    front, cert = tls_kms
    other, _ = make_certificate(tmp_path, "other ca")
    host = start(start_plugin, kms, tmp_path, AWS_REGION="us-east-2", AWS_CA_BUNDLE=cert,
                 KM_STARTUP_RETRY_MS="1000")
    error = rpc_error(lambda: host.configure(
        body(kms, tmp_path, f'ca_bundle = "{other}"\nmax_attempts = 1\n', endpoint=front.url)))
    assert "certificate" in error.details().lower()


def test_unreadable_ca_bundle_is_named(start_plugin, kms, tmp_path):
    host = start(start_plugin, kms, tmp_path, AWS_REGION="us-east-2",
                 AWS_CA_BUNDLE=str(tmp_path / "missing.pem"))
    valid, notes = host.validate(body(kms, tmp_path))
    assert not valid
    assert notes == [f'AWS_CA_BUNDLE: cannot read the CA bundle "{tmp_path / "missing.pem"}": '
                     "No such file or directory"]
