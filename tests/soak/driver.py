"""The chaos soak's run (see chaos_soak.py for what it does and how to run
it): sets up the fleet, runs the steps, the final sweeps, and the report."""
import collections
import dataclasses
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from emulator.emulator_process import EmulatorProcess
from soak import callers, chaos, invariants as inv, servers as fleet

# (name, shared key_identifier_value or None, max_attempts or None): two
# replicas, another server, and one that stops for good (a newcomer then
# takes its caller's place). max_attempts 1 and 2 make faults fail calls.
FLEET = (("replica-1", "soak-replica", 1), ("replica-2", "soak-replica", None),
         ("other", None, 2), ("doomed", None, None))
NEWCOMER = ("newcomer", None, 1)
HOUR_S = 3600.0
MONITOR_PERIOD_S = 0.25
DOOM_AT = 0.15  # of the loop's time: the doomed server stops for good
RESTART_BY = 0.6  # of the loop's time: a restart happens by then if none came yet
FINAL_MOVE_H = 36  # each final clock move: <= stale_alias_age / 4 between refreshes


class AliasMonitor:
    """While the faults are on: checks every MONITOR_PERIOD_S that each alias
    of a live server targets an Enabled key (soak.check_live_aliases), so a
    moment when one does not is seen even if it does not last."""

    def __init__(self, soak):
        self.soak = soak
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="alias-monitor", daemon=True)

    def run(self):
        while not self.stopping.wait(MONITOR_PERIOD_S):
            self.soak.check_live_aliases(self.soak.emulator.state())

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()


class Soak:
    """One soak run (see the module docstring)."""

    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.started = time.monotonic()
        self.emulator = EmulatorProcess(clock_follows_emulator=True)
        self.keyring = callers.Keyring()
        self.gate = callers.ClockGate()
        self.ledger = inv.Ledger()
        self.violations = []
        self.reported = set()
        self.lock = threading.Lock()
        self.ops = collections.Counter()
        self.injected = collections.Counter()
        self.taken = collections.Counter()
        self.fault_log_seen = 0
        self.step = 0
        self.checks = 0
        self.clock_moves = []
        self.restarts = []
        self.doomed_at = None  # (step, emulator time, its alias targets)
        self.servers = []
        self.callers = []
        self.pending = []  # (caller, Outcome) not judged yet
        self.calls = {}
        self.started_loop_at = 0.0

    # -- set-up ----------------------------------------------------------------
    def start_fleet(self):
        for name, identity, attempts in FLEET:
            self.callers.append(self.start_server(name, identity, attempts))

    def start_server(self, name, identity, max_attempts):
        """A new server and its caller, keys generated as at SPIRE's first start."""
        server = fleet.SoakServer(name, self.binary(), self.emulator,
                                  os.path.join(self.args.work_dir, name), identity, max_attempts)
        self.servers.append(server)
        server.start()
        caller = callers.SpireCaller(server, random.Random(self.rng.randrange(2**32)),
                                     self.keyring, self.gate)
        self.record(caller, [caller.resync()] + caller.ensure_keys())
        return caller

    def binary(self):
        return os.path.join(self.args.build_dir, "spire-aws-kms")

    def live(self):
        return [s for s in self.servers if s.alive]

    def live_server_ids(self):
        """Servers that run, or restart: all but the one stopped for good."""
        return {s.server_id for s in self.servers if not s.gone_for_good}

    def elapsed(self):
        return time.monotonic() - self.started

    # -- recording and judging answers -------------------------------------------
    def record(self, caller, outcomes):
        self.pending.extend((caller, outcome) for outcome in outcomes)

    def new_faults(self):
        entries = self.emulator.fault_log(since=self.fault_log_seen)
        self.fault_log_seen += len(entries)
        for entry in entries:
            self.taken[entry["fault"]] += 1
        return entries

    def judge_outcomes(self, fault_log):
        """Every answer since the last judgement, against the faults taken."""
        for caller, outcome in self.pending:
            server = caller.server
            if outcome.kind == "SignData":
                category, problem = inv.judge_sign(outcome, self.keyring, fault_log, server.akid,
                                                   self.follow_failures(server, outcome),
                                                   server.identity is not None)
            elif outcome.kind == "GenerateKey":
                category, problem = inv.judge_generate(outcome, fault_log, server.akid)
            else:
                category, problem = "answered", None
            self.ops[(outcome.kind, category)] += 1
            if problem:
                self.violate(f"{outcome.kind} on {server.name}", problem)
        self.pending = []

    @staticmethod
    def follow_failures(server, outcome):
        """The plugin's "Could not follow our alias" records during the call."""
        return [r for r in server.log_since(outcome.started - inv.WINDOW_SLACK_S,
                                            "Could not follow our alias")
                if fleet.parse_timestamp(r["@timestamp"]) <= outcome.ended + inv.WINDOW_SLACK_S]

    def violate(self, what, detail):
        """Records and prints a broken rule (once: the monitor sees it again)."""
        with self.lock:
            if (what, detail) in self.reported:
                return
            self.reported.add((what, detail))
            violation = inv.Violation(self.step, what, detail)
            self.violations.append(violation)
        print(f"VIOLATION {violation}", flush=True)

    # -- checks of KMS's truth ----------------------------------------------------
    def check_live_aliases(self, state):
        with self.lock:
            self.checks += 1
        for alias, key_id, shows in inv.live_alias_problems(state, self.live_server_ids()):
            with self.lock:
                self.ledger.lost.add(key_id)
            self.violate("live alias on a dead key", f"{alias} targets {key_id}, {shows}")

    def plugin_views(self):
        views = {}
        for server in self.live():
            views[server.name] = {k.id: k.fingerprint for k in server.host.get_public_keys()}
        return views

    def view_problems(self, state, views):
        problems = []
        for server in self.live():
            for key_id, problem, lost in inv.plugin_view_problems(state, server.server_id,
                                                                  views[server.name]):
                problems.append((server, key_id, problem, lost))
        return problems

    def check_views(self, refreshed):
        """Each live plugin's keys against KMS, after its next refresh (waited
        for when the clock moved or a server restarted, or when they differ)."""
        if refreshed:
            self.wait_refreshes()
        state = self.emulator.state()
        problems = self.view_problems(state, self.plugin_views())
        if problems and not refreshed:
            self.wait_refreshes()
            state = self.emulator.state()
            problems = self.view_problems(state, self.plugin_views())
        self.checks += 1
        for server, key_id, problem, lost in problems:
            if lost:
                self.ledger.lost.add(lost)
            self.violate(f"{server.name}'s key after its refresh", f"{key_id}: {problem}")
        self.check_live_aliases(state)
        self.ledger.observe(state)
        return state

    def wait_refreshes(self):
        late = fleet.wait_for_runs(self.live(), "refresh_aliases", 2, 30)
        for server in late:
            self.violate("refresh did not run", f"{server.name}: no two refresh runs in 30 s")

    # -- events ------------------------------------------------------------------
    def move_clock(self, hours):
        self.emulator.advance_clock(seconds=hours * HOUR_S)
        self.clock_moves.append(hours)

    def restart(self, caller):
        server = caller.server
        if not server.alive:
            return ""
        server.stop()
        server.start()
        self.restarts.append((self.step, server.name))
        caller.maybe_change_types()
        self.record(caller, [caller.resync()] + caller.ensure_keys())
        return server.name

    def doom(self):
        server = next(s for s in self.servers if s.name == "doomed")
        state = self.emulator.state()
        keys = [k for n, k in inv.spire_aliases(state).items()
                if inv.alias_server(n) == server.server_id]
        server.stop(for_good=True)
        self.doomed_at = (self.step, self.emulator.now(), keys)
        index = next(i for i, c in enumerate(self.callers) if c.server is server)
        self.callers[index] = self.start_server(*NEWCOMER)

    # -- the run -----------------------------------------------------------------
    def run_step(self, loop_end):
        self.step += 1
        began = time.monotonic()
        plan = chaos.draw_step(self.rng, len(self.callers))
        for fault in plan.faults:
            self.emulator.inject(**fault.inject_args())
            self.injected[fault.fault] += fault.count
        with AliasMonitor(self):
            self.act(plan)
        progress = (self.elapsed() - self.started_loop_at) / (loop_end - self.started_loop_at)
        if plan.restart < 0 and not self.restarts and progress >= RESTART_BY:
            plan = dataclasses.replace(plan, restart=self.rng.randrange(len(self.callers)))
        restarted = self.restart(self.callers[plan.restart]) if plan.restart >= 0 else ""
        if self.doomed_at is None and progress >= DOOM_AT:
            self.doom()
        acted = time.monotonic()
        with AliasMonitor(self):
            fleet.wait_for_runs(self.live(), None, 1, 15)  # the fleet ran under faults
        self.check_live_aliases(self.emulator.state())
        self.emulator.clear_faults()
        self.judge_outcomes(self.new_faults())
        checking = time.monotonic()
        self.check_views(refreshed=bool(plan.clock_move_h) or bool(restarted))
        if self.args.verbose:
            print(f"step {self.step} ({self.elapsed():.0f} s; actions {acted - began:.1f} s, "
                  f"fleet {checking - acted:.1f} s, check {time.monotonic() - checking:.1f} s): "
                  f"faults {', '.join(map(str, plan.faults)) or 'none'}; {len(plan.actions)} "
                  f"actions; clock +{plan.clock_move_h} h; restart {restarted or '-'}",
                  flush=True)

    def act(self, plan):
        """The callers' actions, each caller in its own thread (in the plan's
        order); the clock moves once plan.clock_move_at actions are done,
        between GenerateKeys (callers.ClockGate)."""
        progress = threading.Condition()
        done = [0]

        def run_caller(index):
            caller, outcomes = self.callers[index], []
            for who, action, family, aimed in plan.actions:
                if who != index:
                    continue
                if aimed is not None:
                    self.emulator.inject(**aimed.inject_args())
                    with progress:
                        self.injected[aimed.fault] += aimed.count
                outcomes.extend(caller.act(action, family))
                with progress:
                    done[0] += 1
                    progress.notify_all()
            return caller, outcomes

        working = [i for i, c in enumerate(self.callers) if c.server.alive]
        with ThreadPoolExecutor(max_workers=len(working)) as pool:
            futures = [pool.submit(run_caller, index) for index in working]
            if plan.clock_move_h:
                with progress:
                    progress.wait_for(lambda: done[0] >= plan.clock_move_at
                                      or all(f.done() for f in futures))
                with self.gate.moving():
                    self.move_clock(plan.clock_move_h)
            for future in futures:
                self.record(*future.result())

    def final(self, deadline):
        """Moves the clock until the stopped server's aliases are stale and every
        key is past orphan_key_age, then waits for the sweeps to leave nothing."""
        self.emulator.clear_faults()
        self.step += 1
        stale_s = fleet.STALE_ALIAS_AGE_H * HOUR_S
        orphan_s = fleet.ORPHAN_KEY_AGE_H * HOUR_S
        target = self.emulator.now() + orphan_s + HOUR_S
        if self.doomed_at is not None:
            target = max(target, self.doomed_at[1] + stale_s + HOUR_S)
        while self.emulator.now() < target:
            self.move_clock(min(FINAL_MOVE_H, (target - self.emulator.now()) / HOUR_S + 0.01))
            self.wait_refreshes()
            self.check_live_aliases(self.emulator.state())
        leftovers = self.wait_for_cleanup(deadline)
        self.check_views(refreshed=True)
        self.checks += 1
        for key in leftovers["orphans"]:
            self.violate("old orphan left", f"{key['id']} ({key['description']}), created "
                         f"{(self.emulator.now() - key['creation_date']) / HOUR_S:.0f} h ago")
        for alias in leftovers["aliases"]:
            self.violate("stopped server's alias left", alias)
        for key in leftovers["keys"]:
            self.violate("stopped server's key left Enabled", key)

    def leftovers(self):
        state = self.emulator.state()
        orphan_s = fleet.ORPHAN_KEY_AGE_H * HOUR_S
        found = {"orphans": inv.old_orphans(state, self.emulator.now(), orphan_s),
                 "aliases": [], "keys": []}
        if self.doomed_at is not None:
            doomed = next(s for s in self.servers if s.name == "doomed")
            found["aliases"], found["keys"] = inv.dead_server_leftovers(
                state, doomed.server_id, self.doomed_at[2])
        return found

    def wait_for_cleanup(self, deadline):
        while True:
            found = self.leftovers()
            if not any(found.values()) or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def run(self):
        print(f"soak: seed {self.args.seed} (replay with --seed {self.args.seed}), "
              f"duration {self.args.duration:.0f} s, work dir {self.args.work_dir}", flush=True)
        self.start_fleet()
        self.started_loop_at = self.elapsed()
        final_reserve = min(max(15.0, self.args.duration * 0.25), 60.0)
        loop_end = self.args.duration - final_reserve
        while self.elapsed() < loop_end or self.step < 4:
            self.run_step(loop_end)
        self.final(time.monotonic() + max(10.0, self.started + self.args.duration
                                          - time.monotonic()))
        self.judge_outcomes(self.new_faults())

    def close(self):
        for server in self.servers:
            try:
                server.close()
            except Exception as error:  # report, and go on closing the others
                self.violate(f"closing {server.name}", repr(error))
        self.calls = self.emulator.calls()
        self.emulator.stop()

    def failed(self):
        return bool(self.violations) or bool(self.ledger.lost)

    # -- report ------------------------------------------------------------------
    def report(self):
        out = []
        out.append(f"soak: seed {self.args.seed}, {self.elapsed():.1f} s, {self.step} steps, "
                   f"{self.checks} invariant checks")
        started = ", ".join(f"{s.name} {s.server_id} (started {s.starts}x, Configure "
                            f"refused {s.configure_failures}x)" for s in self.servers)
        out.append(f"servers: {started}")
        doomed = f"step {self.doomed_at[0]}" if self.doomed_at else "never"
        out.append(f"events: doomed server stopped for good at {doomed}; restarts "
                   f"{len(self.restarts)} {[f'{n}@{s}' for s, n in self.restarts]}; clock moved "
                   f"{len(self.clock_moves)}x, +{sum(self.clock_moves) / 24:.1f} days")
        by_kind = collections.defaultdict(list)
        for (kind, category), count in sorted(self.ops.items()):
            by_kind[kind].append(f"{category} {count}")
        total = sum(self.ops.values())
        out.append(f"operations: {total}: " + "; ".join(
            f"{kind} {sum(c for (k, _), c in self.ops.items() if k == kind)} "
            f"({', '.join(parts)})" for kind, parts in sorted(by_kind.items())))
        out.append("KMS calls: " + str(sum(self.calls.values())) + " (" + ", ".join(
            f"{op} {n}" for op, n in sorted(self.calls.items())) + ")")
        out.append("faults injected (by kind, counts): " + ", ".join(
            f"{k} {n}" for k, n in sorted(self.injected.items())))
        out.append(f"faults taken (by kind): {sum(self.taken.values())}: " + ", ".join(
            f"{k} {n}" for k, n in sorted(self.taken.items())))
        out.append(f"keys: created {len(self.ledger.seen)}, deleted {len(self.ledger.deleted)}, "
                   f"lost {len(self.ledger.lost)}")
        out.append(f"violations: {len(self.violations)}")
        out.extend(f"  {v}" for v in self.violations[:50])
        return "\n".join(out)
