/* A fixed pool of worker threads with a bounded job queue: slow calls (those
 * that may reach KMS) run here so the completion-queue thread never blocks. */
#ifndef KM_PLUGIN_WORKERS_H
#define KM_PLUGIN_WORKERS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct worker_pool worker_pool;
typedef void (*worker_job)(void *arg);

/* Starts threads workers sharing a queue of at most capacity waiting jobs. */
worker_pool *workers_new(size_t threads, size_t capacity);

/* Queues job(arg). False when the queue is full or the pool is stopping. */
bool workers_submit(worker_pool *pool, worker_job job, void *arg);

/* Runs every queued job, then joins the threads and frees the pool. */
void workers_free(worker_pool *pool);

#endif
