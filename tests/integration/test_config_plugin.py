"""Configuration through the plugin's Config service, as SPIRE sends it:
Validate answers valid/notes for good and bad text (HCL printer output and
JSON), Configure refuses bad text with INVALID_ARGUMENT carrying every
problem joined with "; ", and no note ever shows the secret access key.
The settings that judge other servers are bounded, and server ids are
alias-safe: both refused with a note naming the value, the bound or the
character, and why."""
import json
import os

import grpc
import pytest

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "unit", "data")
PRINTER_BASIC = 'region = "us-east-2"\n\nkey_metadata_file = "./key_metadata"'
PRINTER_TAGS = ('region = "us-east-2"\n\nkey_metadata_file = "./key_metadata"\n\n'
                'key_tags {\n  team = "x"\n}')
SECRET = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"


# No region, CA bundle, attempts or retry mode from the test machine's AWS setup.
NO_AWS_SETTINGS = {"AWS_REGION": None, "AWS_DEFAULT_REGION": None, "AWS_PROFILE": None,
                   "AWS_CA_BUNDLE": None, "AWS_MAX_ATTEMPTS": None, "AWS_RETRY_MODE": None,
                   "AWS_CONFIG_FILE": "/nonexistent/aws-config",
                   "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials"}
NO_REGION = ('no AWS region: set region in plugin_data, AWS_REGION or AWS_DEFAULT_REGION in '
             'SPIRE server\'s environment, or region in the shared config profile "default"')


@pytest.fixture
def host(start_plugin):
    plugin = start_plugin(extra_env=NO_AWS_SETTINGS)
    plugin.init()
    return plugin


@pytest.mark.parametrize("text", [
    PRINTER_BASIC,
    PRINTER_TAGS,
    'key_tags = {\n  team = "x"\n}\n\nregion = "cn-north-1"\n\nkey_identifier_value = "srv-1"',
    json.dumps({"region": "us-gov-west-1", "key_identifier_file": "/var/lib/spire/id",
                "key_tags": {"team": "pki"}, "max_attempts": 5}),
    'region = "us-east-2"\n\nkey_metadata_file = "./id"\n\nkey_policy_file = "'
    + os.path.join(DATA_DIR, "config_policy.json") + '"\n\nrefresh_aliases_interval = "1h30m"',
])
def test_validate_accepts_good_configurations(host, text):
    valid, notes = host.validate(text, trust_domain="example.org")
    assert (valid, list(notes)) == (True, [])


def test_validate_reports_every_problem(host):
    text = ('regoin = "us-east-2"\n\nmax_attempts = "3"\n\nkey_tags {\n  "aws:x" = "y"\n}\n\n'
            'log_level = "loud"')
    valid, notes = host.validate(text, trust_domain="example.org")
    assert not valid
    assert list(notes) == [
        'unknown key "regoin" at 1:1 (did you mean "region"?)',
        'tag "aws:x" in key_tags at 6:3: tag keys starting with "aws:" are reserved by AWS',
        'key "max_attempts" at 3:1: expected an integer, found string',
        'key "log_level" at 9:1: expected one of trace, debug, info, warn, error',
        "one of key_metadata_file, key_identifier_file or key_identifier_value is required",
        NO_REGION,
    ]


def test_validate_reports_missing_trust_domain(host):
    valid, notes = host.validate(PRINTER_BASIC, trust_domain="")
    assert not valid
    assert list(notes) == ["trust_domain is required"]


def test_validate_reports_syntax_error_with_position(host):
    valid, notes = host.validate('region = "us-east-2"\n\n  region "us-east-2"')
    assert not valid
    assert list(notes) == ["3:10: expected '=' or '{' after key \"region\", found string"]


def test_configure_rejects_bad_configuration_with_all_problems(host):
    with pytest.raises(grpc.RpcError) as error:
        host.configure('region = "mars-1"\n\nmax_attempts = 0', trust_domain="example.org")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == (
        'key "region" at 1:1: must be an AWS region name such as us-east-2, cn-north-1 or '
        'us-gov-west-1; key "max_attempts" at 3:1: must be between 1 and 10; '
        "one of key_metadata_file, key_identifier_file or key_identifier_value is required")


def test_configure_rejects_missing_trust_domain(host):
    with pytest.raises(grpc.RpcError) as error:
        host.configure(PRINTER_BASIC, trust_domain="")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == "trust_domain is required"


@pytest.mark.parametrize("text", [
    f'region = "us-east-2"\n\nkey_metadata_file = "./id"\n\nsecret_access_key = "{SECRET}"',
    f'region = "us-east-2"\n\nsecret_access_key = ["{SECRET}"]',
    f'secret_access_key = {SECRET}',
    json.dumps({"secret_access_key": {SECRET: SECRET}}),
])
def test_secret_never_in_notes_or_errors(host, text):
    valid, notes = host.validate(text)
    assert not valid
    assert notes and all(SECRET not in note for note in notes)
    with pytest.raises(grpc.RpcError) as error:
        host.configure(text)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert SECRET not in error.value.details()
    host.drain_output()
    assert SECRET not in host.stderr_text()


def test_plugin_keeps_serving_after_hostile_input(host):
    for text in ["a {" * 10000, "\x01\x02", '{"a": ' * 5000, "x = <<EOF\nno end"]:
        valid, notes = host.validate(text)
        assert not valid and len(notes) == 1
    many = "\n".join(f"unknown{i} = {i}" for i in range(40000))
    valid, notes = host.validate(many)
    assert not valid and len(notes) == 21 and notes[-1] == "... and 39982 more problems"
    with pytest.raises(grpc.RpcError) as error:
        host.configure(many)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().endswith("; ... and 39982 more problems")
    valid, notes = host.validate(PRINTER_BASIC)
    assert valid and list(notes) == []


BOUND_CASES = [
    ('stale_alias_age = "4h"',
     'key "stale_alias_age" at 5:1: "4h" is less than the minimum of 168h (7 days): this server '
     "deletes the aliases and keys of other servers whose aliases were not refreshed for "
     "stale_alias_age, so a shorter age could delete the keys of live servers"),
    ('orphan_key_age = "1m"',
     'key "orphan_key_age" at 5:1: "1m" is less than the minimum of 24h: this server deletes the '
     "unaliased keys of its trust domain, other servers' included, once they are older than "
     "orphan_key_age, so a shorter age could delete a key another server has just created and "
     "not yet aliased"),
    ('refresh_aliases_interval = "720h"',
     'key "refresh_aliases_interval" at 5:1: "720h" is more than a quarter of stale_alias_age = '
     "336h, the default (at most 84h): servers delete the keys of a server whose aliases were "
     "not refreshed for their stale_alias_age, so every server must refresh several times "
     "within it"),
    ('key_identifier_value = "prod/server-1"',
     'key "key_identifier_value" at 3:1: character \'/\' at position 5 is not allowed: a server '
     "id is one component of the alias name alias/SPIRE_SERVER/{TRUST_DOMAIN}/{SERVER_ID}/"
     "{KEY_ID}, so it may hold only letters, digits, '_' and '-'"),
]


@pytest.mark.parametrize("line,note", BOUND_CASES)
def test_bounds_and_server_ids_refused_by_validate_and_configure(host, line, note):
    if line.startswith("key_identifier_value"):
        text = f'region = "us-east-2"\n\n{line}'
    else:
        text = f'region = "us-east-2"\n\nkey_identifier_value = "srv-1"\n\n{line}'
    valid, notes = host.validate(text)
    assert (valid, list(notes)) == (False, [note])
    with pytest.raises(grpc.RpcError) as error:
        host.configure(text)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == note
    assert not host.validate('region = "us-east-2"\n\nkey_identifier_value = "srv-1"\n\n'
                             'stale_alias_age = "168h"\n\norphan_key_age = "24h"\n\n'
                             'refresh_aliases_interval = "42h"')[1]
