/* Method table and handlers: protobuf-c messages in and out, the keymanager
 * and configuration APIs in between. Handlers answer exactly once. */
#include "plugin/services.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/secrets.h"
#include "config/config.h"
#include "keymanager/keymanager.h"
#include "goplugin/broker/goplugin_broker.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "spire/plugin/server/keymanager/v1/keymanager.pb-c.h"
#include "spire/service/common/config/v1/config.pb-c.h"
#include "spire/service/private/init/v1/init.pb-c.h"

typedef Spire__Plugin__Server__Keymanager__V1__PublicKey PublicKey;
typedef Spire__Plugin__Server__Keymanager__V1__GenerateKeyRequest GenerateKeyRequest;
typedef Spire__Plugin__Server__Keymanager__V1__GenerateKeyResponse GenerateKeyResponse;
typedef Spire__Plugin__Server__Keymanager__V1__GetPublicKeyRequest GetPublicKeyRequest;
typedef Spire__Plugin__Server__Keymanager__V1__GetPublicKeyResponse GetPublicKeyResponse;
typedef Spire__Plugin__Server__Keymanager__V1__GetPublicKeysRequest GetPublicKeysRequest;
typedef Spire__Plugin__Server__Keymanager__V1__GetPublicKeysResponse GetPublicKeysResponse;
typedef Spire__Plugin__Server__Keymanager__V1__SignDataRequest SignDataRequest;
typedef Spire__Plugin__Server__Keymanager__V1__SignDataResponse SignDataResponse;
typedef Spire__Service__Common__Config__V1__ConfigureRequest ConfigureRequest;
typedef Spire__Service__Common__Config__V1__ConfigureResponse ConfigureResponse;
typedef Spire__Service__Common__Config__V1__ValidateRequest ValidateRequest;
typedef Spire__Service__Common__Config__V1__ValidateResponse ValidateResponse;
typedef Spire__Service__Common__Config__V1__CoreConfiguration CoreConfiguration;
typedef Spire__Service__Private__Init__V1__InitRequest InitRequest;
typedef Spire__Service__Private__Init__V1__InitResponse InitResponse;
typedef Spire__Service__Private__Init__V1__DeinitResponse DeinitResponse;
typedef Grpc__Health__V1__HealthCheckRequest HealthCheckRequest;
typedef Grpc__Health__V1__HealthCheckResponse HealthCheckResponse;

static const char KEYMANAGER_SERVICE[] = "spire.plugin.server.keymanager.v1.KeyManager";
static const char CONFIG_SERVICE[] = "spire.service.common.config.v1.Config";

/* --- helpers ----------------------------------------------------------------- */

/* Unpacks the request, or answers INVALID_ARGUMENT naming the method. */
static void *unpack_or_fail(call_context *ctx, const ProtobufCMessageDescriptor *descriptor,
                            const ProtobufCBinaryData *request)
{
    static const uint8_t empty[1];
    ProtobufCMessage *message = protobuf_c_message_unpack(
        descriptor, NULL, request->len, request->data != NULL ? request->data : empty);
    if (message == NULL) {
        char text[256];
        snprintf(text, sizeof text, "%s: malformed request (not a valid %s message)",
                 call_method_name(ctx), descriptor->name);
        call_fail(ctx, GRPC_STATUS_INVALID_ARGUMENT, text);
    }
    return message;
}

static void free_message(void *message)
{
    if (message != NULL)
        protobuf_c_message_free_unpacked(message, NULL);
}

/* The one bridge from the KeyManager's km_status to the call's gRPC status. */
static void fail_with_status(call_context *ctx, const km_status *status)
{
    grpc_status_code code = status->code != GRPC_STATUS_OK ? status->code : GRPC_STATUS_INTERNAL;
    call_fail(ctx, code, status->message[0] != '\0' ? status->message : "keymanager failed");
}

static const char *trust_domain_of(const CoreConfiguration *core)
{
    return core != NULL && core->trust_domain != NULL ? core->trust_domain : "";
}

static void public_key_to_proto(const km_public_key *key, PublicKey *out)
{
    spire__plugin__server__keymanager__v1__public_key__init(out);
    out->id = key->id != NULL ? key->id : "";
    out->type = (Spire__Plugin__Server__Keymanager__V1__KeyType)key->type;
    out->pkix_data.data = key->pkix;
    out->pkix_data.len = key->pkix_len;
    out->fingerprint = (char *)key->fingerprint;
}

/* --- go-plugin and gRPC housekeeping ------------------------------------------ */

static void handle_health_check(call_context *ctx, const ProtobufCBinaryData *request)
{
    HealthCheckRequest *in =
        unpack_or_fail(ctx, &grpc__health__v1__health_check_request__descriptor, request);
    if (in == NULL)
        return;
    if (in->service[0] != '\0' && strcmp(in->service, "plugin") != 0) {
        char text[200];
        snprintf(text, sizeof text, "unknown service %.100s", in->service);
        call_fail(ctx, GRPC_STATUS_NOT_FOUND, text);
    } else {
        HealthCheckResponse out = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        out.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
        call_reply(ctx, &out.base);
    }
    free_message(in);
}

static void handle_broker_message(call_context *ctx, const ProtobufCBinaryData *request)
{
    (void)ctx;
    static const uint8_t empty[1];
    Plugin__ConnInfo *info = (Plugin__ConnInfo *)protobuf_c_message_unpack(
        &plugin__conn_info__descriptor, NULL, request->len,
        request->data != NULL ? request->data : empty);
    if (info == NULL) {
        log_write(LOG_WARN, "broker", "ignoring a malformed ConnInfo message", LOG_END);
        return;
    }
    char service_id[16];
    snprintf(service_id, sizeof service_id, "%u", info->service_id);
    log_write(LOG_DEBUG, "broker", "host offers a broker connection", "service_id", service_id,
              "network", info->network, "address", info->address, LOG_END);
    free_message(info);
}

static void handle_shutdown(call_context *ctx, const ProtobufCBinaryData *request)
{
    Plugin__Empty *in = unpack_or_fail(ctx, &plugin__empty__descriptor, request);
    if (in == NULL)
        return;
    Plugin__Empty out = PLUGIN__EMPTY__INIT;
    call_reply(ctx, &out.base);
    free_message(in);
    call_request_stop(ctx, "Shutdown RPC");
}

static void handle_init(call_context *ctx, const ProtobufCBinaryData *request)
{
    InitRequest *in =
        unpack_or_fail(ctx, &spire__service__private__init__v1__init_request__descriptor, request);
    if (in == NULL)
        return;
    char *names[] = {(char *)KEYMANAGER_SERVICE, (char *)CONFIG_SERVICE};
    InitResponse out = SPIRE__SERVICE__PRIVATE__INIT__V1__INIT_RESPONSE__INIT;
    out.n_plugin_service_names = 2;
    out.plugin_service_names = names;
    call_reply(ctx, &out.base);
    free_message(in);
}

static void handle_deinit(call_context *ctx, const ProtobufCBinaryData *request)
{
    void *in = unpack_or_fail(ctx, &spire__service__private__init__v1__deinit_request__descriptor,
                              request);
    if (in == NULL)
        return;
    DeinitResponse out = SPIRE__SERVICE__PRIVATE__INIT__V1__DEINIT_RESPONSE__INIT;
    call_reply(ctx, &out.base);
    free_message(in);
}

/* --- Config ------------------------------------------------------------------ */

static void handle_validate(call_context *ctx, const ProtobufCBinaryData *request)
{
    ValidateRequest *in = unpack_or_fail(
        ctx, &spire__service__common__config__v1__validate_request__descriptor, request);
    if (in == NULL)
        return;
    config_notes notes = {0};
    plugin_config *config =
        config_load_checked(in->hcl_configuration, trust_domain_of(in->core_configuration),
                            km_check_environment, &notes);
    ValidateResponse out = SPIRE__SERVICE__COMMON__CONFIG__V1__VALIDATE_RESPONSE__INIT;
    out.valid = config != NULL;
    if (config == NULL) {
        out.n_notes = notes.count;
        out.notes = notes.items;
    }
    call_reply(ctx, &out.base);
    config_free(config);
    config_notes_clear(&notes);
    free_message(in);
}

static void handle_configure(call_context *ctx, const ProtobufCBinaryData *request)
{
    ConfigureRequest *in = unpack_or_fail(
        ctx, &spire__service__common__config__v1__configure_request__descriptor, request);
    if (in == NULL)
        return;
    config_notes notes = {0};
    plugin_config *config =
        config_load_checked(in->hcl_configuration, trust_domain_of(in->core_configuration),
                            km_check_environment, &notes);
    if (config == NULL) {
        char *joined = config_notes_join(&notes, "; ");
        call_fail(ctx, GRPC_STATUS_INVALID_ARGUMENT,
                  joined != NULL && joined[0] != '\0' ? joined : "invalid configuration");
        free(joined);
    } else {
        log_set_level(config->log_level);
        secrets_allow_core_dumps(config->log_level <= LOG_DEBUG);
        km_status status = {0};
        if (km_configure(call_user(ctx), call_ctx_of(ctx), config, &status) == 0) {
            ConfigureResponse out = SPIRE__SERVICE__COMMON__CONFIG__V1__CONFIGURE_RESPONSE__INIT;
            call_reply(ctx, &out.base);
        } else {
            fail_with_status(ctx, &status);
        }
    }
    config_free(config);
    config_notes_clear(&notes);
    free_message(in);
}

/* --- KeyManager -------------------------------------------------------------- */

/* Answers GenerateKey and GetPublicKey, whose responses both carry one
 * public key: out is the response, its public_key field pointing at slot. */
static void reply_public_key(call_context *ctx, int rc, km_public_key *key, const km_status *status,
                             const ProtobufCMessage *out, PublicKey *slot)
{
    if (rc != 0) {
        fail_with_status(ctx, status);
        return;
    }
    public_key_to_proto(key, slot);
    call_reply(ctx, out);
    km_public_key_clear(key);
}

static void handle_generate_key(call_context *ctx, const ProtobufCBinaryData *request)
{
    GenerateKeyRequest *in = unpack_or_fail(
        ctx, &spire__plugin__server__keymanager__v1__generate_key_request__descriptor, request);
    if (in == NULL)
        return;
    km_public_key key = {0};
    km_status status = {0};
    int rc = km_generate_key(call_user(ctx), call_ctx_of(ctx), in->key_id,
                             (km_key_type)in->key_type, &key, &status);
    PublicKey public_key;
    GenerateKeyResponse out = SPIRE__PLUGIN__SERVER__KEYMANAGER__V1__GENERATE_KEY_RESPONSE__INIT;
    out.public_key = &public_key;
    reply_public_key(ctx, rc, &key, &status, &out.base, &public_key);
    free_message(in);
}

static void handle_get_public_key(call_context *ctx, const ProtobufCBinaryData *request)
{
    GetPublicKeyRequest *in = unpack_or_fail(
        ctx, &spire__plugin__server__keymanager__v1__get_public_key_request__descriptor, request);
    if (in == NULL)
        return;
    km_public_key key = {0};
    km_status status = {0};
    int rc = km_get_public_key(call_user(ctx), in->key_id, &key, &status);
    PublicKey public_key;
    GetPublicKeyResponse out = SPIRE__PLUGIN__SERVER__KEYMANAGER__V1__GET_PUBLIC_KEY_RESPONSE__INIT;
    out.public_key = &public_key;
    reply_public_key(ctx, rc, &key, &status, &out.base, &public_key);
    free_message(in);
}

static void handle_get_public_keys(call_context *ctx, const ProtobufCBinaryData *request)
{
    GetPublicKeysRequest *in = unpack_or_fail(
        ctx, &spire__plugin__server__keymanager__v1__get_public_keys_request__descriptor, request);
    if (in == NULL)
        return;
    km_public_key *keys = NULL;
    size_t count = 0;
    km_status status = {0};
    if (km_get_public_keys(call_user(ctx), &keys, &count, &status) == 0) {
        PublicKey *items = calloc(count ? count : 1, sizeof *items);
        PublicKey **pointers = calloc(count ? count : 1, sizeof *pointers);
        if (items == NULL || pointers == NULL) {
            call_fail(ctx, GRPC_STATUS_INTERNAL, "GetPublicKeys: out of memory");
        } else {
            for (size_t i = 0; i < count; i++) {
                public_key_to_proto(&keys[i], &items[i]);
                pointers[i] = &items[i];
            }
            GetPublicKeysResponse out =
                SPIRE__PLUGIN__SERVER__KEYMANAGER__V1__GET_PUBLIC_KEYS_RESPONSE__INIT;
            out.n_public_keys = count;
            out.public_keys = pointers;
            call_reply(ctx, &out.base);
        }
        free(pointers);
        free(items);
        km_public_keys_free(keys, count);
    } else {
        fail_with_status(ctx, &status);
    }
    free_message(in);
}

static km_signer_opts signer_opts_of(const SignDataRequest *in)
{
    km_signer_opts opts = {.hash = KM_HASH_UNSPECIFIED, .pss = false, .pss_salt_length = 0};
    switch (in->signer_opts_case) {
    case SPIRE__PLUGIN__SERVER__KEYMANAGER__V1__SIGN_DATA_REQUEST__SIGNER_OPTS_HASH_ALGORITHM:
        opts.hash = (km_hash)in->hash_algorithm;
        break;
    case SPIRE__PLUGIN__SERVER__KEYMANAGER__V1__SIGN_DATA_REQUEST__SIGNER_OPTS_PSS_OPTIONS:
        opts.pss = true;
        opts.hash = (km_hash)in->pss_options->hash_algorithm;
        opts.pss_salt_length = in->pss_options->salt_length;
        break;
    default:
        break;
    }
    return opts;
}

/* The end of a SignData, on the thread that ended it (the HTTP event thread,
 * mostly): the answer, then the reference handle_sign_data took. */
static void on_signed(void *user, int rc, km_signature *signature, const km_status *status)
{
    call_context *ctx = user;
    if (rc == 0) {
        SignDataResponse out = SPIRE__PLUGIN__SERVER__KEYMANAGER__V1__SIGN_DATA_RESPONSE__INIT;
        out.signature.data = signature->signature;
        out.signature.len = signature->signature_len;
        out.key_fingerprint = signature->key_fingerprint;
        call_reply(ctx, &out.base);
        km_signature_clear(signature);
    } else {
        fail_with_status(ctx, status);
    }
    call_release(ctx);
}

/* Starts the signature on the completion-queue thread; on_signed answers. */
static void handle_sign_data(call_context *ctx, const ProtobufCBinaryData *request)
{
    SignDataRequest *in = unpack_or_fail(
        ctx, &spire__plugin__server__keymanager__v1__sign_data_request__descriptor, request);
    if (in == NULL)
        return;
    km_signer_opts opts = signer_opts_of(in);
    km_status status = {0};
    call_hold(ctx); /* on_signed's, from now on */
    if (km_sign_data_start(call_user(ctx), call_ctx_of(ctx), in->key_id, in->data.data,
                           in->data.len, &opts, on_signed, ctx, &status) != 0) {
        fail_with_status(ctx, &status);
        call_release(ctx);
    }
    free_message(in);
}

/* --- the table ---------------------------------------------------------------- */

#define KEYMANAGER "/spire.plugin.server.keymanager.v1.KeyManager/"
#define CONFIG     "/spire.service.common.config.v1.Config/"
#define INIT       "/spire.service.private.init.v1.Init/"

static const method_def service_methods[] = {
    {"/grpc.health.v1.Health/Check", "Check", METHOD_INLINE, handle_health_check},
    {"/plugin.GRPCBroker/StartStream", "StartStream", METHOD_BIDI_STREAM, handle_broker_message},
    {"/plugin.GRPCController/Shutdown", "Shutdown", METHOD_INLINE, handle_shutdown},
    {"/plugin.GRPCStdio/StreamStdio", "StreamStdio", METHOD_SERVER_STREAM, NULL},
    {INIT "Init", "Init", METHOD_INLINE, handle_init},
    {INIT "Deinit", "Deinit", METHOD_INLINE, handle_deinit},
    {CONFIG "Configure", "Configure", METHOD_WORKER, handle_configure},
    {CONFIG "Validate", "Validate", METHOD_INLINE, handle_validate},
    {KEYMANAGER "GenerateKey", "GenerateKey", METHOD_WORKER, handle_generate_key},
    {KEYMANAGER "GetPublicKey", "GetPublicKey", METHOD_INLINE, handle_get_public_key},
    {KEYMANAGER "GetPublicKeys", "GetPublicKeys", METHOD_INLINE, handle_get_public_keys},
    {KEYMANAGER "SignData", "SignData", METHOD_ASYNC, handle_sign_data},
};

const method_def *services_methods(size_t *count)
{
    *count = sizeof service_methods / sizeof service_methods[0];
    return service_methods;
}
