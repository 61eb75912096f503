/* Worker pool: a ring buffer of jobs guarded by one mutex and condition. */
#include "plugin/workers.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct {
    worker_job job;
    void *arg;
} queued_job;

struct worker_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    queued_job *queue;
    size_t capacity, head, count;
    bool stopping;
    pthread_t *threads;
    size_t thread_count;
};

static bool take_job(worker_pool *pool, queued_job *out)
{
    pthread_mutex_lock(&pool->lock);
    while (pool->count == 0 && !pool->stopping)
        pthread_cond_wait(&pool->wake, &pool->lock);
    bool have = pool->count > 0;
    if (have) {
        *out = pool->queue[pool->head];
        pool->head = (pool->head + 1) % pool->capacity;
        pool->count--;
    }
    pthread_mutex_unlock(&pool->lock);
    return have;
}

static void *worker_main(void *arg)
{
    worker_pool *pool = arg;
    queued_job item;
    while (take_job(pool, &item))
        item.job(item.arg);
    return NULL;
}

worker_pool *workers_new(size_t threads, size_t capacity)
{
    worker_pool *pool = calloc(1, sizeof *pool);
    if (pool == NULL)
        return NULL;
    pool->queue = calloc(capacity, sizeof *pool->queue);
    pool->threads = calloc(threads, sizeof *pool->threads);
    pool->capacity = capacity;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    if (pool->queue == NULL || pool->threads == NULL) {
        workers_free(pool);
        return NULL;
    }
    for (size_t i = 0; i < threads; i++) {
        if (pthread_create(&pool->threads[i], NULL, worker_main, pool) != 0)
            break;
        pool->thread_count++;
    }
    if (pool->thread_count == 0) {
        workers_free(pool);
        return NULL;
    }
    return pool;
}

bool workers_submit(worker_pool *pool, worker_job job, void *arg)
{
    pthread_mutex_lock(&pool->lock);
    bool accepted = !pool->stopping && pool->count < pool->capacity;
    if (accepted) {
        pool->queue[(pool->head + pool->count) % pool->capacity] = (queued_job){job, arg};
        pool->count++;
        pthread_cond_signal(&pool->wake);
    }
    pthread_mutex_unlock(&pool->lock);
    return accepted;
}

void workers_free(worker_pool *pool)
{
    if (pool == NULL)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (size_t i = 0; i < pool->thread_count; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->wake);
    free(pool->queue);
    free(pool->threads);
    free(pool);
}
