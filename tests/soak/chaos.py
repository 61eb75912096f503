"""The soak's random choices, all drawn from one random.Random seeded at start
(so a run's plan replays with --seed; the timing of the processes does not):
the faults each step injects into the emulator, the callers' actions (some
preceded by a fault aimed at the calls they make: the fleet tasks' traffic
would otherwise take most faults), clock moves, restarts."""
from dataclasses import dataclass

# Fault kinds and how often each is drawn. access_denied is rare: it is a
# definite refusal, not a transient, so nothing retries it.
FAULT_WEIGHTS = {"throttle": 3, "500": 2, "503": 2, "drop": 2, "latency": 2,
                 "access_denied": 0.4, "lost": 2, "lost_500": 1.5, "lost_503": 1.5}
# The KMS operations the plugin makes, weighted towards the ones whose
# outcome decides what is kept or deleted.
OPERATION_WEIGHTS = {"*": 6, "CreateKey": 1.5, "GetPublicKey": 1.5, "Sign": 3, "DescribeKey": 2,
                     "CreateAlias": 2, "UpdateAlias": 3, "DeleteAlias": 1.5, "ListAliases": 2,
                     "ListKeys": 1, "ScheduleKeyDeletion": 2}
# Forward moves of the emulator clock, in hours: each at most a quarter of
# stale_alias_age (168 h) apart from a complete refresh of every live server,
# as refresh_aliases_interval <= stale_alias_age / 4 guarantees in a fleet.
CLOCK_MOVES_H = (12, 24, 36, 42)
# The KMS calls of GenerateKey and of SignData, for aimed faults.
GENERATE_OPERATIONS = ("CreateKey", "GetPublicKey", "CreateAlias", "UpdateAlias", "DescribeKey")
SIGN_OPERATIONS = ("Sign",)
AIMED_SHARE = {"prepare": 0.4, "sign": 0.1}


@dataclass(frozen=True)
class Fault:
    operation: str
    fault: str
    count: int
    after: int = 0
    latency_ms: int = 0

    def inject_args(self):
        return {"operation": self.operation, "fault": self.fault, "count": self.count,
                "after": self.after, "latency_ms": self.latency_ms}

    def __str__(self):
        extra = f" after {self.after}" if self.after else ""
        extra += f" {self.latency_ms} ms" if self.latency_ms else ""
        return f"{self.operation}:{self.fault}x{self.count}{extra}"


def weighted(rng, weights):
    names = list(weights)
    return rng.choices(names, weights=[weights[n] for n in names])[0]


def draw_fault(rng, operation):
    """One fault on operation: a kind, a count (sometimes a burst longer than
    the plugin's retries), sometimes after a few calls, latency for some."""
    kind = weighted(rng, FAULT_WEIGHTS)
    latency = 0
    if kind == "latency":
        latency = rng.randint(50, 900)
    elif kind in ("lost", "lost_500", "lost_503") and rng.random() < 0.2:
        latency = rng.randint(10, 300)  # applied late, then lost
    count = rng.randint(1, 4) if rng.random() < 0.8 else rng.randint(5, 8)
    return Fault(operation, kind, count, rng.choice((0, 0, 0, 1, 2, 3)), latency)


def draw_faults(rng, quiet_share=0.15):
    """A step's faults: none (quiet_share of the steps), else one to four."""
    if rng.random() < quiet_share:
        return []
    return [draw_fault(rng, weighted(rng, OPERATION_WEIGHTS)) for _ in range(rng.randint(1, 4))]


def draw_aimed_fault(rng, action):
    """A fault injected right before action, on one of the calls it makes
    (None most of the time)."""
    if rng.random() >= AIMED_SHARE.get(action, 0):
        return None
    operations = GENERATE_OPERATIONS if action == "prepare" else SIGN_OPERATIONS
    fault = draw_fault(rng, rng.choice(operations))
    return Fault(fault.operation, fault.fault, fault.count, 0, fault.latency_ms)


@dataclass(frozen=True)
class StepPlan:
    faults: list
    actions: list  # (caller index, action name, family, aimed Fault or None)
    clock_move_h: int  # 0: no move
    clock_move_at: int  # index in actions before which the clock moves
    restart: int  # caller index to restart, or -1


ACTIONS = {"sign": 6, "prepare": 1.2, "activate": 1.0, "get_public_keys": 0.4}
FAMILIES = ("x509-CA", "JWT-Signer", "WIT-Signer")


def draw_step(rng, callers, restart_share=0.06, clock_share=0.45):
    """One step: faults, a shuffled list of caller actions, maybe a clock move
    and a restart of one caller's server."""
    actions = []
    for index in range(callers):
        for _ in range(rng.randint(3, 7)):
            action = weighted(rng, ACTIONS)
            actions.append((index, action, rng.choice(FAMILIES), draw_aimed_fault(rng, action)))
    rng.shuffle(actions)
    move = rng.choice(CLOCK_MOVES_H) if rng.random() < clock_share else 0
    restart = rng.randrange(callers) if rng.random() < restart_share else -1
    return StepPlan(draw_faults(rng), actions, move, rng.randint(0, len(actions)), restart)
