/* The spire-* tags of tag-based key discovery and the pure decisions on them
 * (see tag_mode.h). */
#include "keymanager/tag_mode.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tag_mode_format_time(double now_s, char out[TAG_MODE_TIME_SIZE])
{
    long long seconds = (long long)now_s; /* toward zero; floor for a negative clock */
    if ((double)seconds > now_s)
        seconds--;
    snprintf(out, TAG_MODE_TIME_SIZE, "%lld", seconds);
}

bool tag_mode_parse_time(const char *text, int64_t *out)
{
    if (text == NULL)
        return false;
    const char *digits = text + (text[0] == '+' || text[0] == '-' ? 1 : 0);
    if (digits[0] == '\0')
        return false;
    for (const char *c = digits; *c != '\0'; c++) {
        if (*c < '0' || *c > '9')
            return false;
    }
    errno = 0;
    char *end = NULL;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0')
        return false;
    *out = (int64_t)value;
    return true;
}

size_t tag_mode_key_tags(const char *trust_domain, const char *server_id, const char *spire_id,
                         const char *active, const char *now_text, const kms_tag *operator_tags,
                         size_t operator_count, kms_tag *out)
{
    size_t n = 0;
    out[n++] = (kms_tag){TAG_SERVER_TD, trust_domain};
    out[n++] = (kms_tag){TAG_SERVER_ID, server_id};
    out[n++] = (kms_tag){TAG_ACTIVE, active};
    for (size_t i = 0; i < operator_count; i++)
        out[n++] = operator_tags[i];
    out[n++] = (kms_tag){TAG_KEY_ID, spire_id};
    out[n++] = (kms_tag){TAG_LAST_UPDATE, now_text};
    return n;
}

bool tag_mode_is_active(const aws_tag_set *tags)
{
    const char *active = aws_tag_set_get(tags, TAG_ACTIVE);
    return active != NULL && strcmp(active, "true") == 0;
}

bool tag_mode_carries_spire_tags(const aws_tag_set *tags)
{
    return aws_tag_set_get(tags, TAG_LAST_UPDATE) != NULL ||
           aws_tag_set_get(tags, TAG_ACTIVE) != NULL;
}

static bool equals(const char *value, const char *expected)
{
    return value != NULL && expected != NULL && strcmp(value, expected) == 0;
}

/* now - then >= age, in milliseconds; a date in the future is never old. */
static bool older_than(double then_s, double now_s, int64_t age_ms)
{
    return (now_s - then_s) * 1000.0 >= (double)age_ms;
}

tags_verdict tag_mode_judge(const aws_tag_set *tags, const char *trust_domain,
                            const char *server_id, double now_s, int64_t stale_age_ms)
{
    if (!tag_mode_is_active(tags))
        return TAGS_SAY_NOTHING;
    if (equals(aws_tag_set_get(tags, TAG_SERVER_TD), trust_domain) &&
        equals(aws_tag_set_get(tags, TAG_SERVER_ID), server_id))
        return TAGS_SAY_OURS;
    const char *text = aws_tag_set_get(tags, TAG_LAST_UPDATE);
    if (text == NULL)
        return TAGS_SAY_UNDATED;
    int64_t last_update = 0;
    if (!tag_mode_parse_time(text, &last_update))
        return TAGS_SAY_MALFORMED;
    return older_than((double)last_update, now_s, stale_age_ms) ? TAGS_SAY_STALE : TAGS_SAY_LIVE;
}

bool tag_mode_undated_is_stale(double creation_date_s, double now_s, int64_t stale_age_ms)
{
    return creation_date_s > 0 && older_than(creation_date_s, now_s, stale_age_ms);
}
