/* Lowercase hexadecimal text of bytes: SigV4 hashes and signatures, key
 * fingerprints, the SSO token cache's file name. (OpenSSL's
 * OPENSSL_buf2hexstr writes uppercase, which SigV4 does not accept.) */
#ifndef KM_COMMON_HEX_H
#define KM_COMMON_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Writes 2 * len lowercase hex digits and a NUL into out (2 * len + 1 bytes). */
void hex_encode(const uint8_t *bytes, size_t len, char *out);

#endif
