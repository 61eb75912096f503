/* Wiping allocator and core dump control (see secrets.h). */
#include "common/secrets.h"

#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

void secret_wipe(void *data, size_t len)
{
    if (data != NULL && len > 0)
        explicit_bzero(data, len);
}

void secret_free(void *block)
{
    if (block == NULL)
        return;
    explicit_bzero(block, malloc_usable_size(block));
    free(block);
}

void *secret_realloc(void *block, size_t size)
{
    if (block == NULL)
        return malloc(size);
    if (size == 0) {
        secret_free(block);
        return NULL;
    }
    size_t old = malloc_usable_size(block);
    void *moved = malloc(size);
    if (moved == NULL)
        return NULL;
    memcpy(moved, block, old < size ? old : size);
    secret_free(block);
    return moved;
}

enum { SCRUBBED_STACK_BYTES = 64 * 1024 };

__attribute__((noinline)) void secret_scrub_stack(void)
{
    unsigned char area[SCRUBBED_STACK_BYTES];
    explicit_bzero(area, sizeof area);
    __asm__ volatile("" : : "r"(area) : "memory");
}

void secret_free_string(char *text)
{
    if (text != NULL)
        explicit_bzero(text, strlen(text));
    free(text);
}

static pthread_mutex_t limits_lock = PTHREAD_MUTEX_INITIALIZER;
static bool limits_saved;
static struct rlimit saved_core_limit;

void secrets_protect_process(void)
{
    json_set_alloc_funcs(malloc, secret_free);
    pthread_mutex_lock(&limits_lock);
    if (!limits_saved && getrlimit(RLIMIT_CORE, &saved_core_limit) == 0)
        limits_saved = true;
    pthread_mutex_unlock(&limits_lock);
    secrets_allow_core_dumps(false);
}

int secrets_allow_core_dumps(bool allow)
{
    pthread_mutex_lock(&limits_lock);
    struct rlimit limit;
    int rc = limits_saved ? 0 : getrlimit(RLIMIT_CORE, &limit);
    if (limits_saved)
        limit = saved_core_limit;
    if (!allow)
        limit.rlim_cur = 0; /* the hard limit stays: debug can raise it again */
    if (rc == 0)
        rc = setrlimit(RLIMIT_CORE, &limit);
    if (prctl(PR_SET_DUMPABLE, allow ? 1L : 0L, 0L, 0L, 0L) != 0)
        rc = -1;
    pthread_mutex_unlock(&limits_lock);
    return rc == 0 ? 0 : -1;
}
