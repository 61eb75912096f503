/* A thread that runs teardowns that may block for seconds (stopping the fleet
 * and the deletion queue joins their threads and waits for in-flight KMS
 * calls), so that whichever thread drops an object's last reference -- the
 * gRPC completion-queue thread among them, in GetPublicKey(s) -- only hands
 * the object over and goes on. Items are intrusive: handing over never
 * allocates and never fails. */
#ifndef KM_TEARDOWN_H
#define KM_TEARDOWN_H

#include <stdbool.h>

typedef struct teardown_item {
    struct teardown_item *next;
    void (*run)(void *object);
    void *object;
} teardown_item;

typedef struct teardown teardown;

/* NULL if the thread could not be started. */
teardown *teardown_start(void);
/* Queues item->run(item->object) for the teardown thread (item lives in the
 * object and stays untouched until run is called). Takes one short mutex. */
void teardown_hand_over(teardown *self, teardown_item *item);
/* Waits until everything handed over so far (and anything those teardowns
 * hand over in turn) has run. Not from a teardown itself. */
void teardown_drain(teardown *self);
/* Drains, stops the thread and frees. */
void teardown_stop(teardown *self);

#endif
