/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <openssl/evp.h>

#include "error.h"
#include "sha256.h"

struct vv_sha256 {
  EVP_MD_CTX *ctx;
};

struct vv_sha256 *
vv_sha256_new (void)
{
  struct vv_sha256 *h = calloc (1, sizeof *h);

  if (h == NULL || (h->ctx = EVP_MD_CTX_new ()) == NULL ||
      EVP_DigestInit_ex (h->ctx, EVP_sha256 (), NULL) != 1) {
    vv_error ("cannot initialise SHA-256");
    vv_sha256_free (h);
    return NULL;
  }
  return h;
}

void
vv_sha256_update (struct vv_sha256 *h, const void *buf, size_t len)
{
  EVP_DigestUpdate (h->ctx, buf, len);
}

void
vv_sha256_final (struct vv_sha256 *h, char ret_hex[VV_SHA256_HEX])
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0, i;

  EVP_DigestFinal_ex (h->ctx, md, &len);
  for (i = len; i < VV_SHA256_LEN; i++)
    md[i] = 0;
  vv_sha256_to_hex (md, ret_hex);
}

void
vv_sha256_to_hex (const unsigned char md[VV_SHA256_LEN],
                  char ret_hex[VV_SHA256_HEX])
{
  static const char hex[] = "0123456789abcdef";

  for (unsigned i = 0; i < VV_SHA256_LEN; i++) {
    ret_hex[2 * i] = hex[md[i] >> 4];
    ret_hex[2 * i + 1] = hex[md[i] & 15];
  }
  ret_hex[64] = '\0';
}

int
vv_sha256_digest (const void *buf, size_t len,
                  unsigned char ret[VV_SHA256_LEN])
{
  unsigned int n = 0;

  if (EVP_Digest (buf, len, ret, &n, EVP_sha256 (), NULL) != 1
      || n != VV_SHA256_LEN) {
    vv_error ("cannot compute a SHA-256 digest (OpenSSL failed)");
    return -1;
  }
  return 0;
}

struct vv_sha256 *
vv_sha256_free (struct vv_sha256 *h)
{
  if (h) {
    EVP_MD_CTX_free (h->ctx);
    free (h);
  }
  return NULL;
}

int
vv_sha256_hex (const void *buf, size_t len, char ret_hex[VV_SHA256_HEX])
{
  unsigned char md[VV_SHA256_LEN];

  if (vv_sha256_digest (buf, len, md) == -1)
    return -1;
  vv_sha256_to_hex (md, ret_hex);
  return 0;
}
