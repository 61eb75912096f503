"""Runs the KMS emulator as a separate process (as the demo and benchmarks do)
and drives its control API over HTTP with the same method names as the
in-process Emulator: proc.inject("Sign", "throttle", 1), proc.calls(), ..."""
import json
import os
import selectors
import subprocess
import sys
import time
import urllib.request

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kms_emulator.py")
DEFAULT_AKID = "AKIDEMULATOR"
DEFAULT_SECRET = "emulator-secret"


class ControlError(Exception):
    pass


def control_call(url, method, **kwargs):
    """POST url/_emulator/method with kwargs as JSON; returns the result."""
    request = urllib.request.Request(f"{url}/_emulator/{method}",
                                     data=json.dumps(kwargs).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())["result"]
    except urllib.error.HTTPError as error:
        raise ControlError(f"{method}: {error.code} {error.read().decode()}") from None


class RemoteControl:
    """The control API of an emulator reached by URL."""

    def __init__(self, url):
        self.url = url
        self.sts_url = url
        self.imds_url = url
        self.container_url = f"{url}/container-credentials/emulator"
        self.access_key_id = DEFAULT_AKID
        self.secret_access_key = DEFAULT_SECRET

    def plugin_env(self):
        return {"AWS_ACCESS_KEY_ID": self.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.secret_access_key}

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)
        return lambda **kwargs: control_call(self.url, method, **kwargs)


class EmulatorProcess(RemoteControl):
    """Starts `python3 kms_emulator.py --port 0` and waits (with a deadline)
    for its KMS_EMULATOR_URL line. Control methods take keyword arguments."""

    def __init__(self, region="us-east-2", state_file=None, timeout=20.0,
                 clock_follows_emulator=False):
        command = [sys.executable, SCRIPT, "--port", "0", "--region", region]
        if state_file:
            command += ["--state-file", str(state_file)]
        if clock_follows_emulator:
            command.append("--clock-follows-emulator")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        super().__init__(self._read_url(timeout))

    def _read_url(self, timeout):
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(deadline - time.monotonic()):
                    line = self.process.stdout.readline()
                    if line.startswith("KMS_EMULATOR_URL="):
                        return line.strip().split("=", 1)[1]
                    if not line:
                        break
        self.stop()
        raise RuntimeError("the KMS emulator process did not print its URL")

    def stop(self, timeout=10.0):
        """SIGTERM, then wait; returns the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
        code = self.process.wait(timeout)
        self.process.stdout.close()
        return code
