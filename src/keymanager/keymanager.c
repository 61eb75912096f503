/* PLACEHOLDER until the KeyManager issue lands: answers "not configured". */
#include "keymanager/keymanager.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

struct km_manager {
    int unused;
};

km_manager *km_new(void) { return calloc(1, sizeof(km_manager)); }
void km_free(km_manager *manager) { free(manager); }
void km_shutdown(km_manager *manager) { (void)manager; }
bool km_is_configured(km_manager *manager)
{
    (void)manager;
    return false;
}

void km_status_set(km_status *status, int code, const char *format, ...)
{
    status->code = code;
    va_list args;
    va_start(args, format);
    vsnprintf(status->message, sizeof status->message, format, args);
    va_end(args);
}

int km_configure(km_manager *manager, const plugin_config *config, km_status *status)
{
    (void)manager;
    (void)config;
    status->code = KM_OK;
    return 0;
}

int km_generate_key(km_manager *manager, const km_call *call, const char *key_id, km_key_type type,
                    km_public_key *out, km_status *status)
{
    (void)manager, (void)call, (void)key_id, (void)type, (void)out;
    km_status_set(status, KM_FAILED_PRECONDITION, "not configured");
    return -1;
}

int km_get_public_key(km_manager *manager, const char *key_id, km_public_key *out,
                      km_status *status)
{
    (void)manager, (void)key_id, (void)out;
    km_status_set(status, KM_FAILED_PRECONDITION, "not configured");
    return -1;
}

int km_get_public_keys(km_manager *manager, km_public_key **keys, size_t *count, km_status *status)
{
    (void)manager, (void)keys, (void)count;
    km_status_set(status, KM_FAILED_PRECONDITION, "not configured");
    return -1;
}

int km_sign_data(km_manager *manager, const km_call *call, const char *key_id, const uint8_t *data,
                 size_t data_len, const km_signer_opts *opts, km_signature *out, km_status *status)
{
    (void)manager, (void)call, (void)key_id, (void)data, (void)data_len, (void)opts, (void)out;
    km_status_set(status, KM_FAILED_PRECONDITION, "not configured");
    return -1;
}

void km_public_key_clear(km_public_key *key) { (void)key; }
void km_public_keys_free(km_public_key *keys, size_t count)
{
    (void)count;
    free(keys);
}
void km_signature_clear(km_signature *signature) { (void)signature; }
