/* Unit tests for the signing map (signing.c): every key type x hash x
 * PSS/non-PSS combination, salt lengths, digest lengths, error texts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keymanager/signing.h"

static const km_key_type ALL_TYPES[] = {KM_KEY_TYPE_EC_P256, KM_KEY_TYPE_EC_P384,
                                        KM_KEY_TYPE_RSA_2048, KM_KEY_TYPE_RSA_4096};
static const km_hash ALL_HASHES[] = {
    KM_HASH_SHA224,   KM_HASH_SHA256,   KM_HASH_SHA384,   KM_HASH_SHA512,     KM_HASH_SHA3_224,
    KM_HASH_SHA3_256, KM_HASH_SHA3_384, KM_HASH_SHA3_512, KM_HASH_SHA512_224, KM_HASH_SHA512_256};

/* The table SPIRE's aws_kms implements; NULL: refused. */
static const char *expected(km_key_type type, km_hash hash, bool pss)
{
    bool rsa = type == KM_KEY_TYPE_RSA_2048 || type == KM_KEY_TYPE_RSA_4096;
    if (type == KM_KEY_TYPE_EC_P256 && hash == KM_HASH_SHA256 && !pss)
        return "ECDSA_SHA_256";
    if (type == KM_KEY_TYPE_EC_P384 && hash == KM_HASH_SHA384 && !pss)
        return "ECDSA_SHA_384";
    if (!rsa)
        return NULL;
    switch (hash) {
    case KM_HASH_SHA256:
        return pss ? "RSASSA_PSS_SHA_256" : "RSASSA_PKCS1_V1_5_SHA_256";
    case KM_HASH_SHA384:
        return pss ? "RSASSA_PSS_SHA_384" : "RSASSA_PKCS1_V1_5_SHA_384";
    case KM_HASH_SHA512:
        return pss ? "RSASSA_PSS_SHA_512" : "RSASSA_PKCS1_V1_5_SHA_512";
    default:
        return NULL;
    }
}

static void test_full_table(void **state)
{
    (void)state;
    int accepted = 0;
    for (size_t t = 0; t < 4; t++) {
        for (size_t h = 0; h < sizeof ALL_HASHES / sizeof ALL_HASHES[0]; h++) {
            for (int pss = 0; pss < 2; pss++) {
                km_signer_opts opts = {.hash = ALL_HASHES[h], .pss = pss, .pss_salt_length = -1};
                signing_choice choice = {0};
                km_status status = {0};
                bool ok = signing_choose(ALL_TYPES[t], &opts, &choice, &status);
                const char *want = expected(ALL_TYPES[t], ALL_HASHES[h], pss);
                if (want == NULL) {
                    assert_false(ok);
                    assert_non_null(strstr(status.message, signing_key_type_name(ALL_TYPES[t])));
                    assert_non_null(strstr(status.message, signing_hash_name(ALL_HASHES[h])));
                } else {
                    assert_true(ok);
                    assert_string_equal(choice.algorithm, want);
                    assert_int_equal(choice.digest_len, signing_digest_length(ALL_HASHES[h]));
                    accepted++;
                }
            }
        }
    }
    assert_int_equal(accepted, 2 + 2 * 6);
}

static void test_unspecified_hash(void **state)
{
    (void)state;
    km_signer_opts opts = {.hash = KM_HASH_UNSPECIFIED};
    signing_choice choice;
    km_status status = {0};
    assert_false(signing_choose(KM_KEY_TYPE_EC_P256, &opts, &choice, &status));
    assert_string_equal(status.message, "hash algorithm is required");
    assert_int_equal(status.code, GRPC_STATUS_INVALID_ARGUMENT);
}

static void test_unknown_values(void **state)
{
    (void)state;
    km_signer_opts opts = {.hash = (km_hash)99};
    signing_choice choice;
    km_status status = {0};
    assert_false(signing_choose(KM_KEY_TYPE_RSA_2048, &opts, &choice, &status));
    assert_non_null(strstr(status.message, "UNKNOWN"));
    opts.hash = KM_HASH_SHA256;
    assert_false(signing_choose((km_key_type)9, &opts, &choice, &status));
}

static void test_pss_salt_lengths(void **state)
{
    (void)state;
    const int32_t good[] = {-1, 0, 48};
    for (size_t i = 0; i < 3; i++) {
        km_signer_opts opts = {.hash = KM_HASH_SHA384, .pss = true, .pss_salt_length = good[i]};
        signing_choice choice;
        km_status status = {0};
        assert_true(signing_choose(KM_KEY_TYPE_RSA_4096, &opts, &choice, &status));
        assert_string_equal(choice.algorithm, "RSASSA_PSS_SHA_384");
    }
    const int32_t bad[] = {-2, 1, 32, 64};
    for (size_t i = 0; i < 4; i++) {
        km_signer_opts opts = {.hash = KM_HASH_SHA384, .pss = true, .pss_salt_length = bad[i]};
        signing_choice choice;
        km_status status = {0};
        assert_false(signing_choose(KM_KEY_TYPE_RSA_4096, &opts, &choice, &status));
        assert_non_null(strstr(status.message, "salt"));
    }
}

static void test_digest_lengths(void **state)
{
    (void)state;
    assert_int_equal(signing_digest_length(KM_HASH_SHA224), 28);
    assert_int_equal(signing_digest_length(KM_HASH_SHA256), 32);
    assert_int_equal(signing_digest_length(KM_HASH_SHA384), 48);
    assert_int_equal(signing_digest_length(KM_HASH_SHA512), 64);
    assert_int_equal(signing_digest_length(KM_HASH_SHA512_256), 32);
    assert_int_equal(signing_digest_length(KM_HASH_UNSPECIFIED), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_table),     cmocka_unit_test(test_unspecified_hash),
        cmocka_unit_test(test_unknown_values), cmocka_unit_test(test_pss_salt_lengths),
        cmocka_unit_test(test_digest_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
