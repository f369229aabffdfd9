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
  for (i = 0; i < len && i < 32; i++)
    snprintf (ret_hex + 2 * i, 3, "%02x", md[i]);
  ret_hex[64] = '\0';
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
