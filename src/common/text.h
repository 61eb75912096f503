/* Formatted text in a new allocation: alias names, descriptions and the
 * operator commands' messages are built with it. */
#ifndef KM_COMMON_TEXT_H
#define KM_COMMON_TEXT_H

#include <stdarg.h>

/* printf into a malloc'd string; NULL when out of memory. */
char *text_format(const char *format, ...) __attribute__((format(printf, 1, 2)));
char *text_vformat(const char *format, va_list args) __attribute__((format(printf, 1, 0)));

#endif
