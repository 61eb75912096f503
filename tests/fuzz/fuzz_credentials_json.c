/* libFuzzer target: arbitrary bytes as the JSON credentials of the container
 * endpoint, EC2 instance metadata and a credential_process (the first byte
 * picks which), through aws_cred_parse_json, and the same text through the
 * ISO 8601 expiration parser. Any crash, sanitizer report or leak is a
 * finding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/credentials_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const aws_cred_json_kind kinds[] = {AWS_CRED_JSON_CONTAINER, AWS_CRED_JSON_IMDS,
                                               AWS_CRED_JSON_PROCESS};
    aws_cred_json_kind kind = kinds[data[0] % 3];
    char *text = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';

    aws_credentials credentials;
    aws_error err;
    aws_error_clear(&err);
    aws_cred_parse_json(text, kind, &credentials, &err);
    aws_credentials_clear(&credentials);

    int64_t when;
    aws_cred_parse_iso8601(text, &when);
    free(text);
    return 0;
}
