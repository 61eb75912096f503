/* The timed loop shared by the benchmark clients (health, SignData, direct Sign): T
 * threads, each with its own state (a connection, a completion queue), make
 * warm-up calls, then N calls in all are timed between two barriers, and the
 * CPU time of named processes (/proc/PID/stat utime+stime) and of this client
 * (getrusage) is read at the same two points. Optional shell commands run
 * just before timing starts and just after it ends, outside the figures
 * (e.g. callgrind_control -z PID / -d PID). One JSON line on stdout:
 *   {"calls", "concurrency", "failures", "p50_us", "p99_us", "calls_per_s",
 *    "seconds", "cpu_us_per_call": {"NAME": us, ..., "client": us}}
 * Figures only: nothing is asserted. */
#ifndef BENCH_RUN_H
#define BENCH_RUN_H

#include <stdint.h>
#include <sys/types.h>

#define BENCH_MAX_PIDS 4

typedef struct {
    /* Per-thread state from shared (NULL on failure: the run fails). */
    void *(*thread_open)(void *shared);
    /* One call; 0 when it succeeded. Failures are counted, not fatal. */
    int (*call)(void *thread_state);
    void (*thread_close)(void *thread_state);
    void *shared;
} bench_client;

typedef struct {
    int calls;       /* timed calls, spread over the threads */
    int concurrency; /* threads, each with one call in flight */
    int warmup;      /* untimed calls before, spread the same way */
    int pid_count;
    const char *pid_names[BENCH_MAX_PIDS];
    pid_t pids[BENCH_MAX_PIDS];
    const char *at_start; /* shell command run after warm-up, before timing, or NULL */
    const char *at_end;   /* shell command run after timing, or NULL */
} bench_plan;

/* The defaults (200 warm-up calls), then the common options: returns 2 when
 * argv[*i] is one of --calls N, --concurrency C, --warmup N, --pid NAME=PID,
 * --at-start CMD, --at-end CMD (and consumes its value), 0 when it is not,
 * -1 when its value is bad. */
void bench_plan_init(bench_plan *plan);
int bench_plan_option(bench_plan *plan, int argc, char **argv, int *i);
/* NULL when the plan can run, else what is wrong. */
const char *bench_plan_problem(const bench_plan *plan);

/* Runs the plan and prints the JSON line; returns the process exit code
 * (0 when every call succeeded). */
int bench_run(const bench_client *client, const bench_plan *plan);

int64_t bench_now_ns(void);

#endif
