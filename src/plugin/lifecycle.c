/* Signals and parent watch on one thread (see lifecycle.h). */
#include "plugin/lifecycle.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

struct lifecycle {
    pthread_t thread;
    pid_t parent;
    lifecycle_stop_fn stop;
    void *arg;
    atomic_bool ending;
};

static void stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
}

pid_t lifecycle_prepare(void)
{
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    stop_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    return parent;
}

static void *lifecycle_main(void *arg)
{
    lifecycle *life = arg;
    sigset_t set;
    stop_signals(&set);
    const struct timespec tick = {.tv_sec = 1, .tv_nsec = 0};
    while (!atomic_load(&life->ending)) {
        /* Checked first too: the parent may have died before prctl. */
        if (getppid() != life->parent)
            life->stop(life->arg, "the host process exited");
        siginfo_t info;
        int sig = sigtimedwait(&set, &info, &tick);
        if (sig > 0 && !atomic_load(&life->ending))
            life->stop(life->arg, sig == SIGTERM ? "SIGTERM" : "SIGINT");
    }
    return NULL;
}

lifecycle *lifecycle_start(pid_t parent, lifecycle_stop_fn stop, void *arg)
{
    lifecycle *life = calloc(1, sizeof *life);
    if (life == NULL)
        return NULL;
    life->parent = parent;
    life->stop = stop;
    life->arg = arg;
    atomic_init(&life->ending, false);
    if (pthread_create(&life->thread, NULL, lifecycle_main, life) != 0) {
        free(life);
        return NULL;
    }
    return life;
}

void lifecycle_end(lifecycle *life)
{
    if (life == NULL)
        return;
    atomic_store(&life->ending, true);
    pthread_kill(life->thread, SIGTERM); /* wakes sigtimedwait */
    pthread_join(life->thread, NULL);
    free(life);
}
