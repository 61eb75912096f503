/* libFuzzer target: arbitrary bytes as an STS query-protocol answer: the
 * credentials parser of AssumeRole / AssumeRoleWithWebIdentity (with its
 * ErrorResponse branch), the generic XML error parser with the skew
 * detection that reads its code and message, and the XML tag reader. Any
 * crash, sanitizer report or leak is a finding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/aws_json.h"
#include "aws/clock.h"
#include "aws/credentials_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    aws_credentials credentials;
    aws_error err;
    aws_error_clear(&err);
    aws_cred_parse_sts_xml(text, &credentials, &err);
    aws_credentials_clear(&credentials);

    aws_error answer;
    aws_error_clear(&answer);
    aws_error_from_answer("STS", 403, text, "rid", &answer);
    aws_clock_is_skew_error(answer.code, answer.message);

    char value[256];
    aws_xml_tag(text, "Arn", value, sizeof value);
    aws_xml_tag(text, "Account", value, sizeof value);
    free(text);
    return 0;
}
