/* Process lifecycle: SIGTERM/SIGINT taken with sigwait on one thread, and
 * the host's death noticed both by a parent-death signal and by a watchdog
 * that sees getppid() change (hosts other than SPIRE may set no signal).
 * Every one of them asks for the same graceful stop. */
#ifndef KM_PLUGIN_LIFECYCLE_H
#define KM_PLUGIN_LIFECYCLE_H

#include <sys/types.h>

typedef void (*lifecycle_stop_fn)(void *arg, const char *reason);
typedef struct lifecycle lifecycle;

/* Right at start: remembers the parent, asks the kernel for SIGTERM when it
 * dies, ignores SIGPIPE (a dead host's stderr) and blocks SIGTERM/SIGINT in
 * this thread and every thread created later (call before grpc_init).
 * Returns the parent's pid. */
pid_t lifecycle_prepare(void);

/* Starts the signal and parent-watch thread; stop(arg, reason) may be called
 * more than once. NULL on failure. */
lifecycle *lifecycle_start(pid_t parent, lifecycle_stop_fn stop, void *arg);

/* Ends the thread and frees it. */
void lifecycle_end(lifecycle *life);

#endif
