/* The teardown thread (see teardown.h): a FIFO of intrusive items, one
 * condition variable for "work or stop" and one for "idle". */
#include "keymanager/teardown.h"

#include <pthread.h>
#include <stdlib.h>

struct teardown {
    pthread_mutex_t lock;
    pthread_cond_t work; /* an item arrived, or stop */
    pthread_cond_t idle; /* the list is empty and nothing runs */
    teardown_item *head;
    teardown_item *tail;
    bool running_item;
    bool stopping;
    pthread_t thread;
};

static bool idle_locked(const teardown *self) { return self->head == NULL && !self->running_item; }

static void *teardown_main(void *arg)
{
    teardown *self = arg;
    pthread_mutex_lock(&self->lock);
    for (;;) {
        if (self->head == NULL) {
            if (self->stopping)
                break;
            pthread_cond_wait(&self->work, &self->lock);
            continue;
        }
        teardown_item *item = self->head;
        self->head = item->next;
        if (self->head == NULL)
            self->tail = NULL;
        self->running_item = true;
        pthread_mutex_unlock(&self->lock);
        item->run(item->object);
        pthread_mutex_lock(&self->lock);
        self->running_item = false;
        if (idle_locked(self))
            pthread_cond_broadcast(&self->idle);
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

teardown *teardown_start(void)
{
    teardown *self = calloc(1, sizeof *self);
    if (self == NULL)
        return NULL;
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->work, NULL);
    pthread_cond_init(&self->idle, NULL);
    if (pthread_create(&self->thread, NULL, teardown_main, self) != 0) {
        pthread_cond_destroy(&self->idle);
        pthread_cond_destroy(&self->work);
        pthread_mutex_destroy(&self->lock);
        free(self);
        return NULL;
    }
    return self;
}

void teardown_hand_over(teardown *self, teardown_item *item)
{
    item->next = NULL;
    pthread_mutex_lock(&self->lock);
    if (self->tail != NULL)
        self->tail->next = item;
    else
        self->head = item;
    self->tail = item;
    pthread_cond_signal(&self->work);
    pthread_mutex_unlock(&self->lock);
}

void teardown_drain(teardown *self)
{
    pthread_mutex_lock(&self->lock);
    while (!idle_locked(self))
        pthread_cond_wait(&self->idle, &self->lock);
    pthread_mutex_unlock(&self->lock);
}

void teardown_stop(teardown *self)
{
    if (self == NULL)
        return;
    pthread_mutex_lock(&self->lock);
    self->stopping = true;
    pthread_cond_signal(&self->work);
    pthread_mutex_unlock(&self->lock);
    pthread_join(self->thread, NULL); /* the thread empties the list first */
    pthread_cond_destroy(&self->idle);
    pthread_cond_destroy(&self->work);
    pthread_mutex_destroy(&self->lock);
    free(self);
}
