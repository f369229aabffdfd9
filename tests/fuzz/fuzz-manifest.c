/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness: the manifest parser (src/engine/manifest.c).
 *
 * A manifest is read back from a storage target, which anyone with write
 * access there can change: every byte of it is untrusted.  The input is
 * the manifest text as stored.  What the parser accepts must also survive
 * a round trip: written again with vv_manifest_write, it must parse to
 * the same text.
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "engine/manifest.h"
#include "util/error.h"
#include "json-mutator.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct vv_backup_rec *b, *again;
  char *text, *text2;

  /* The daemon reads at most this much (vv_target_read_all). */
  if (size > VV_MANIFEST_MAX)
    return -1;
  b = vv_manifest_read ("manifest fuzz", (const char *) data, size);
  /* FUZZ_VERBOSE=1: what the parser said (to look at one input). */
  if (getenv ("FUZZ_VERBOSE"))
    fprintf (stderr, "vv_manifest_read: %s\n",
             b ? "accepted" : vv_get_error ());
  if (b == NULL) {
    if (vv_get_error ()[0] == '\0')
      abort ();                 /* a failure must say why */
    return 0;
  }

  text = vv_manifest_write (b);
  if (text == NULL)
    abort ();
  again = vv_manifest_read ("manifest fuzz (written again)", text,
                            strlen (text));
  if (again == NULL) {
    fprintf (stderr, "an accepted manifest, written again, is refused: "
             "%s\n%s", vv_get_error (), text);
    abort ();
  }
  text2 = vv_manifest_write (again);
  if (text2 == NULL || strcmp (text, text2) != 0) {
    fprintf (stderr, "manifest round trip differs:\n%s\n---\n%s", text,
             text2 ? text2 : "(null)");
    abort ();
  }
  free (text2);
  free (text);
  vv_backup_rec_free (again);
  vv_backup_rec_free (b);
  return 0;
}

/* The whole input is the JSON document (for json-mutator.c). */
size_t
fuzz_json_start (const uint8_t *data, size_t size)
{
  return 0;
}
