/* Keeping secrets (secret keys, session tokens, web identity and container
 * tokens) out of freed memory and out of core dumps.
 *
 * - secret_free / secret_realloc: free and realloc that wipe the old block
 *   first (its whole usable size). They are the free/realloc handed to
 *   libcurl (curl_global_init_mem) and to jansson (json_set_alloc_funcs), so
 *   the libraries' own copies of a token header or a credentials answer are
 *   wiped too.
 * - secrets_protect_process: at process start, before any other thread:
 *   installs the wiping allocator in jansson and turns core dumps off
 *   (RLIMIT_CORE 0 and PR_SET_DUMPABLE 0, which also stops other processes
 *   of the same user from reading our memory through ptrace or /proc).
 * - secrets_allow_core_dumps(true) restores both (log_level "debug"). */
#ifndef KM_COMMON_SECRETS_H
#define KM_COMMON_SECRETS_H

#include <stdbool.h>
#include <stddef.h>

/* free() after wiping the block's whole usable size; NULL is ignored. */
void secret_free(void *block);
/* realloc() that moves the data into a new block and wipes the old one. */
void *secret_realloc(void *block, size_t size);
/* Wipes len bytes (a no-op for NULL). */
void secret_wipe(void *data, size_t len);
/* Wipes the 64 KiB of stack below the caller's frame: what deeper calls left
 * there (a lazy symbol binding saves the vector registers, which may hold
 * the last bytes copied, on the stack). For threads that handled secrets,
 * after such work and before they exit. */
void secret_scrub_stack(void);
/* Wipes a NUL-terminated string and frees it. */
void secret_free_string(char *text);

/* Installs secret_free in jansson and disables core dumps. Call once, first
 * thing in main (jansson's allocator must not change under other threads). */
void secrets_protect_process(void);

/* Core dumps on (the limits found at secrets_protect_process) or off again.
 * Returns 0, or -1 when setrlimit or prctl refused. */
int secrets_allow_core_dumps(bool allow);

#endif
