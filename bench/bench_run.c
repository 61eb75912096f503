/* The timed loop shared by the benchmark clients: see bench_run.h. */
#include "bench_run.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const bench_client *client;
    int warmup_calls;
    int calls;
    int64_t *latencies_ns; /* this thread's slice */
    int failures;
    int open_failed;
    pthread_barrier_t *warmed; /* every thread warmed up; the main thread reads CPU */
    pthread_barrier_t *go;     /* timing starts */
    pthread_barrier_t *done;   /* timing ends */
} worker;

/* CPU seconds at one point: the named processes', then this client's. */
typedef struct {
    double seconds[BENCH_MAX_PIDS + 1];
} cpu_sample;

int64_t bench_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

void bench_plan_init(bench_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->warmup = 200;
}

static int parse_count(const char *text, int *out)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < 0 || value > 100000000)
        return -1;
    *out = (int)value;
    return 0;
}

static int parse_pid_option(bench_plan *plan, char *value)
{
    char *equals = strchr(value, '=');
    int pid;
    if (equals == NULL || equals == value || plan->pid_count == BENCH_MAX_PIDS ||
        parse_count(equals + 1, &pid) != 0 || pid == 0)
        return -1;
    *equals = '\0';
    plan->pid_names[plan->pid_count] = value;
    plan->pids[plan->pid_count++] = (pid_t)pid;
    return 2;
}

int bench_plan_option(bench_plan *plan, int argc, char **argv, int *i)
{
    const char *name = argv[*i];
    int *count = strcmp(name, "--calls") == 0         ? &plan->calls
                 : strcmp(name, "--concurrency") == 0 ? &plan->concurrency
                 : strcmp(name, "--warmup") == 0      ? &plan->warmup
                                                      : NULL;
    const char **command = strcmp(name, "--at-start") == 0 ? &plan->at_start
                           : strcmp(name, "--at-end") == 0 ? &plan->at_end
                                                           : NULL;
    if (count == NULL && command == NULL && strcmp(name, "--pid") != 0)
        return 0;
    if (*i + 1 >= argc)
        return -1;
    char *value = argv[++*i];
    if (command != NULL) {
        *command = value;
        return 2;
    }
    if (count == NULL)
        return parse_pid_option(plan, value);
    return parse_count(value, count) == 0 ? 2 : -1;
}

const char *bench_plan_problem(const bench_plan *plan)
{
    if (plan->concurrency <= 0 || plan->concurrency > 256)
        return "--concurrency must be between 1 and 256";
    if (plan->calls < plan->concurrency)
        return "--calls must be at least --concurrency";
    return NULL;
}

/* utime + stime of a process in seconds; -1 when it cannot be read. */
static double process_cpu_seconds(pid_t pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return -1;
    size_t length = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[length] = '\0';
    /* Fields after the command name, which is in parentheses and may hold
     * anything: utime and stime are fields 14 and 15, i.e. the 12th and
     * 13th after the ")". */
    const char *p = strrchr(text, ')');
    unsigned long long utime, stime;
    if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                            &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static double own_cpu_seconds(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

static void sample_cpu(const bench_plan *plan, cpu_sample *sample)
{
    for (int p = 0; p < plan->pid_count; p++)
        sample->seconds[p] = process_cpu_seconds(plan->pids[p]);
    sample->seconds[plan->pid_count] = own_cpu_seconds();
}

/* Runs a --at-start / --at-end command; 1 when it failed. */
static int run_hook(const char *command)
{
    if (command == NULL)
        return 0;
    fflush(stdout);
    int status = system(command);
    if (status == 0)
        return 0;
    fprintf(stderr, "%s: exit status %d\n", command, status);
    return 1;
}

static void *run_worker(void *arg)
{
    worker *w = arg;
    void *state = w->client->thread_open(w->client->shared);
    w->open_failed = state == NULL;
    for (int i = 0; state != NULL && i < w->warmup_calls; i++)
        if (w->client->call(state) != 0)
            w->failures++;
    pthread_barrier_wait(w->warmed);
    pthread_barrier_wait(w->go);
    for (int i = 0; state != NULL && i < w->calls; i++) {
        int64_t started = bench_now_ns();
        if (w->client->call(state) != 0)
            w->failures++;
        w->latencies_ns[i] = bench_now_ns() - started;
    }
    pthread_barrier_wait(w->done);
    if (state != NULL)
        w->client->thread_close(state);
    return NULL;
}

static int by_value(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void print_figures(const bench_plan *plan, int64_t *latencies, double seconds, int failures,
                          const cpu_sample *before, const cpu_sample *after)
{
    size_t total = (size_t)plan->calls;
    qsort(latencies, total, sizeof *latencies, by_value);
    printf("{\"calls\": %zu, \"concurrency\": %d, \"failures\": %d, \"p50_us\": %.1f, "
           "\"p99_us\": %.1f, \"calls_per_s\": %.0f, \"seconds\": %.3f, \"cpu_us_per_call\": {",
           total, plan->concurrency, failures, (double)latencies[total / 2] / 1e3,
           (double)latencies[total * 99 / 100] / 1e3, (double)total / seconds, seconds);
    for (int p = 0; p <= plan->pid_count; p++) {
        const char *name = p < plan->pid_count ? plan->pid_names[p] : "client";
        double used = after->seconds[p] - before->seconds[p];
        if (before->seconds[p] < 0 || after->seconds[p] < 0)
            printf("\"%s\": null, ", name);
        else
            printf("\"%s\": %.1f%s", name, used / (double)total * 1e6,
                   p < plan->pid_count ? ", " : "");
    }
    printf("}}\n");
}

int bench_run(const bench_client *client, const bench_plan *plan)
{
    int threads = plan->concurrency;
    int64_t *latencies = calloc((size_t)plan->calls, sizeof *latencies);
    worker *workers = calloc((size_t)threads, sizeof *workers);
    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    pthread_barrier_t warmed, go, done;
    pthread_barrier_init(&warmed, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&done, NULL, (unsigned)threads + 1);
    int64_t *slice = latencies;
    for (int t = 0; t < threads; t++) {
        int calls = plan->calls / threads + (t < plan->calls % threads);
        workers[t] = (worker){.client = client,
                              .warmup_calls = plan->warmup / threads + (t < plan->warmup % threads),
                              .calls = calls,
                              .latencies_ns = slice,
                              .warmed = &warmed,
                              .go = &go,
                              .done = &done};
        slice += calls;
        pthread_create(&ids[t], NULL, run_worker, &workers[t]);
    }
    cpu_sample before, after;
    pthread_barrier_wait(&warmed);
    int hook_failures = run_hook(plan->at_start);
    sample_cpu(plan, &before);
    int64_t started = bench_now_ns();
    pthread_barrier_wait(&go);
    pthread_barrier_wait(&done);
    double seconds = (double)(bench_now_ns() - started) / 1e9;
    sample_cpu(plan, &after);
    hook_failures += run_hook(plan->at_end);
    int failures = 0, open_failures = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        failures += workers[t].failures;
        open_failures += workers[t].open_failed;
    }
    if (open_failures == 0)
        print_figures(plan, latencies, seconds, failures, &before, &after);
    else
        fprintf(stderr, "%d of %d threads could not open their connection\n", open_failures,
                threads);
    pthread_barrier_destroy(&warmed);
    pthread_barrier_destroy(&go);
    pthread_barrier_destroy(&done);
    free(latencies);
    free(workers);
    free(ids);
    return failures == 0 && open_failures == 0 && hook_failures == 0 ? 0 : 1;
}
