"""GenerateKey in tag mode through the real binary against the emulator
(issue 11 point 2): a new key is created spire-active=false and marked active
only once the alias targets it and the rotated-out key is marked inactive, so
a GenerateKey that fails at any step, lost answers included, never leaves a
second active key for the SPIRE key id; an inactive alias target is marked
active by the next alias refresh. A sampler watches the emulator during each
call: at no moment are two usable keys tagged active for one key id."""
import threading

import grpc
import pytest

from keymanager_helpers import key_state, wait_until
from tag_mode_helpers import (Server, alias_target, runs, tags, usable_active_keys,
                              wait_runs)


class ActiveSampler:
    """Samples the emulator every few milliseconds; records the largest number
    of usable keys tagged active for one SPIRE key id of one server."""

    def __init__(self, kms, server_id, spire_id):
        self.kms, self.server_id, self.spire_id = kms, server_id, spire_id
        self.most = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            count = len(usable_active_keys(self.kms, self.server_id, self.spire_id))
            self.most = max(self.most, count)
            self.samples += 1
            self._stop.wait(0.003)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def configured(start_plugin, kms, tmp_path, refresh="42h"):
    server = Server(start_plugin, kms, tmp_path, extra_env={"KM_ALIAS_SETTLE_MS": "100"})
    return server.configure(refresh=refresh, extra="max_attempts = 2")


def test_rotation_hands_the_active_tag_over(start_plugin, kms, tmp_path):
    server = configured(start_plugin, kms, tmp_path)
    server.host.generate_key("x509-CA-A", "EC_P256")
    old = alias_target(kms, server.alias("x509-CA-A"))
    assert usable_active_keys(kms, server.server_id, "x509-CA-A") == [old]
    with ActiveSampler(kms, server.server_id, "x509-CA-A") as sampler:
        server.host.generate_key("x509-CA-A", "EC_P256")
        new = alias_target(kms, server.alias("x509-CA-A"))
        wait_until(lambda: key_state(kms, old) == "PendingDeletion", what="old key deleted")
    assert sampler.most == 1 and sampler.samples > 0
    assert tags(kms, old)["spire-active"] == "false"
    assert tags(kms, new)["spire-active"] == "true"
    assert usable_active_keys(kms, server.server_id, "x509-CA-A") == [new]


# (operation, fault, after, count, whether GenerateKey succeeds): count covers
# every attempt of the call (2), each dropped answer possibly sent twice by curl
FAULTS = [
    ("CreateKey", "lost", 0, 1, True),   # applied, answer lost: the resend makes another key
    ("CreateKey", "lost", 0, 4, False),  # every key made, every answer lost
    ("CreateKey", "500", 0, 4, False),
    ("GetPublicKey", "500", 0, 4, False),
    ("GetPublicKey", "lost", 0, 4, False),
    ("UpdateAlias", "500", 0, 4, False),   # not applied: KMS shows the old key
    ("UpdateAlias", "lost", 0, 4, True),   # applied: KMS shows the new key
    ("UpdateAlias", "lost_500", 0, 4, True),
    ("TagResource", "500", 0, 4, True),    # the old key cannot be marked inactive
    ("TagResource", "lost", 0, 4, True),   # marked, answer lost
    ("TagResource", "500", 1, 4, True),    # the new key cannot be marked active
    ("TagResource", "lost_503", 1, 4, True),
]


@pytest.mark.parametrize("operation,fault,after,count,succeeds", FAULTS)
def test_failed_generate_key_leaves_no_second_active_key(start_plugin, kms, tmp_path, operation,
                                                         fault, after, count, succeeds):
    server = configured(start_plugin, kms, tmp_path, refresh="1s")
    first = server.host.generate_key("x509-CA-A", "EC_P256")
    old = alias_target(kms, server.alias("x509-CA-A"))
    keys_before = {k["id"] for k in kms.state()["keys"]}
    kms.inject(operation, fault, count=count, after=after)
    with ActiveSampler(kms, server.server_id, "x509-CA-A") as sampler:
        try:
            result = server.host.generate_key("x509-CA-A", "EC_P256")
            assert succeeds, f"{operation} {fault}: GenerateKey succeeded"
        except grpc.RpcError as error:
            assert not succeeds, f"{operation} {fault}: {error.details()}"
            result = None
        kms.clear_faults()
        target = alias_target(kms, server.alias("x509-CA-A"))
        # the refresh (every second) marks the alias target active; the deletion
        # queue marks and deletes whatever was given up
        done = len(runs(server.host, "refresh_aliases"))
        wait_runs(server.host, "refresh_aliases", done + 2)
        wait_until(lambda: usable_active_keys(kms, server.server_id, "x509-CA-A") == [target],
                   what="only the alias target active")
        new_keys = {k["id"] for k in kms.state()["keys"]} - keys_before
        for key_id in new_keys - {target}:
            # a key a failed step left behind is inactive (deleted by the queue or,
            # when nobody knows it, by the tag sweep's healing pass later)
            assert tags(kms, key_id)["spire-active"] == "false"
    assert sampler.most <= 1, f"{operation} {fault}: two active keys at once"
    if succeeds:
        assert target != old and result.pkix_data == kms.store.keys[target].public_der
        wait_until(lambda: key_state(kms, old) == "PendingDeletion", what="old key deleted")
        assert tags(kms, old)["spire-active"] == "false"
    else:
        assert target == old
        assert server.host.get_public_key("x509-CA-A") == first
        assert tags(kms, old)["spire-active"] == "true"


def test_first_generate_key_fault_leaves_no_active_key(start_plugin, kms, tmp_path):
    """No key yet: CreateAlias refused; the new key was never active."""
    server = configured(start_plugin, kms, tmp_path)
    kms.inject("CreateAlias", "access_denied", count=2)
    with pytest.raises(grpc.RpcError):
        server.host.generate_key("JWT-Signer-A", "EC_P256")
    created = [k["id"] for k in kms.state()["keys"]]
    assert len(created) == 1
    assert tags(kms, created[0])["spire-active"] == "false"
    wait_until(lambda: key_state(kms, created[0]) == "PendingDeletion", what="given up key deleted")
    assert usable_active_keys(kms, server.server_id, "JWT-Signer-A") == []
