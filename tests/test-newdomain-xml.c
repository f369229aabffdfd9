/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The definition of a domain restored as a new one, data-driven.
 *
 * Each tests/data/newdomain/<case>.xml is a stored domain XML (what an
 * attacker who can write to the target may put there).  It is made into
 * the definition of domain "restored" (UUID below), with disk vda restored
 * to IMAGE as qcow2, on a host that has the network "default", the bridge
 * "br0" and an emulator for x86_64 only.  <case>.out holds the expected
 * XML and <case>.notes the expected notes (no file: none), or <case>.err a
 * fragment of the expected error.  The expected files are written and
 * read by hand: there is no switch that regenerates them.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "restore/restore-internal.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"

#define NAME "restored"
#define UUID "6f1c4a52-3b7e-4d7a-9c11-2e5b8f0a7d31"
#define IMAGE "/var/lib/libvirt/images/restored/vda.qcow2"
#define EMULATOR "/usr/bin/qemu-system-x86_64"
/* At least this many cases must be found: catches a wrong data dir. */
#define MIN_CASES 8

static unsigned lookups;

static char *
test_emulator (void *opaque, const char *virt_type, const char *arch,
               const char *machine)
{
  (void) opaque;
  (void) machine;
  if (strcmp (virt_type, "kvm") != 0 && strcmp (virt_type, "qemu") != 0) {
    vv_error ("emulator asked for virt type '%s'", virt_type);
    return NULL;
  }
  if (strcmp (arch, "x86_64") != 0) {
    vv_error ("this host has no emulator for architecture '%s'", arch);
    return NULL;
  }
  return vv_strdup (EMULATOR);
}

static int
test_network (void *opaque, const char *name)
{
  (void) opaque;
  lookups++;
  return strcmp (name, "default") == 0;
}

static int
test_bridge (void *opaque, const char *name)
{
  (void) opaque;
  lookups++;
  return strcmp (name, "br0") == 0;
}

/* The whole file, or NULL if it does not exist. */
static char *
slurp (const char *path)
{
  _cleanup_fclose_ FILE *f = fopen (path, "r");
  char *buf = NULL;
  size_t cap = 0, len;

  if (f == NULL) {
    if (errno != ENOENT) {
      perror (path);
      exit (EXIT_FAILURE);
    }
    return NULL;
  }
  len = getdelim (&buf, &cap, '\0', f) == -1 ? 0 : strlen (buf);
  if (buf == NULL)
    buf = strdup ("");
  /* One trailing newline is the editor's, not the content's. */
  if (len > 0 && buf[len - 1] == '\n')
    buf[len - 1] = '\0';
  return buf;
}

static int
run_case (const char *dir, const char *name)
{
  const struct vv_new_domain_host host = {
    test_emulator, test_network, test_bridge, NULL
  };
  const struct vv_new_domain_disk disks[] = { { "vda", IMAGE, "qcow2" } };
  _cleanup_free_ char *in_path = vv_printf ("%s/%s.xml", dir, name);
  _cleanup_free_ char *out_path = vv_printf ("%s/%s.out", dir, name);
  _cleanup_free_ char *notes_path = vv_printf ("%s/%s.notes", dir, name);
  _cleanup_free_ char *err_path = vv_printf ("%s/%s.err", dir, name);
  _cleanup_free_ char *in = NULL, *want_xml = NULL, *want_notes = NULL;
  _cleanup_free_ char *want_err = NULL, *xml = NULL, *notes = NULL;
  int r;

  in = slurp (in_path);
  want_xml = slurp (out_path);
  want_notes = slurp (notes_path);
  want_err = slurp (err_path);
  if (in == NULL || (want_xml == NULL) == (want_err == NULL)) {
    fprintf (stderr, "case %s: needs %s.xml and one of %s.out, %s.err\n",
             name, name, name, name);
    return -1;
  }
  r = vv_restore_new_domain_xml (in, NAME, UUID, disks, 1, &host, &xml,
                                 &notes);
  if (want_err) {
    if (r == 0) {
      fprintf (stderr, "case %s: expected an error containing '%s', got "
               "this XML:\n%s\n", name, want_err, xml);
      return -1;
    }
    if (strstr (vv_get_error (), want_err) == NULL) {
      fprintf (stderr, "case %s: the error '%s' does not contain '%s'\n",
               name, vv_get_error (), want_err);
      return -1;
    }
    return 0;
  }
  if (r == -1) {
    fprintf (stderr, "case %s: failed: %s\n", name, vv_get_error ());
    return -1;
  }
  /* libxml2 ends the document with a newline. */
  if (xml[0] && xml[strlen (xml) - 1] == '\n')
    xml[strlen (xml) - 1] = '\0';
  if (strcmp (xml, want_xml) != 0) {
    fprintf (stderr, "case %s: the XML differs from %s; got:\n%s\n", name,
             out_path, xml);
    return -1;
  }
  if ((notes == NULL) != (want_notes == NULL) ||
      (notes && strcmp (notes, want_notes) != 0)) {
    fprintf (stderr, "case %s: notes\n  got:      %s\n  expected: %s\n",
             name, notes ? notes : "(none)",
             want_notes ? want_notes : "(none)");
    return -1;
  }
  return 0;
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

int
main (void)
{
  const char *srcdir = getenv ("abs_top_srcdir");
  _cleanup_free_ char *dir = vv_printf ("%s/tests/data/newdomain",
                                        srcdir ? srcdir : "..");
  char *names[256];
  size_t n = 0, failed = 0;
  struct dirent *de;
  DIR *d;

  if (dir == NULL || (d = opendir (dir)) == NULL) {
    fprintf (stderr, "cannot open %s\n", dir ? dir : "the data dir");
    return EXIT_FAILURE;
  }
  while ((de = readdir (d)) != NULL) {
    size_t len = strlen (de->d_name);
    if (len > 4 && strcmp (de->d_name + len - 4, ".xml") == 0 &&
        n < sizeof names / sizeof names[0])
      names[n++] = strndup (de->d_name, len - 4);
  }
  closedir (d);
  qsort (names, n, sizeof *names, cmp_str);
  for (size_t i = 0; i < n; i++) {
    if (run_case (dir, names[i]) == -1)
      failed++;
    else
      printf ("ok: %s\n", names[i]);
    free (names[i]);
  }
  if (n < MIN_CASES) {
    fprintf (stderr, "only %zu cases in %s; expected at least %d\n", n, dir,
             MIN_CASES);
    return EXIT_FAILURE;
  }
  if (lookups == 0) {
    fprintf (stderr, "no case asked whether a network or bridge exists\n");
    return EXIT_FAILURE;
  }
  printf ("%zu cases, %zu failed\n", n, failed);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
