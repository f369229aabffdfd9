/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>
/* Reading a backup back: virtvault verify ID, restore ID --to DIR. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/error.h"
#include "util/strutil.h"

/* The daemon resolves paths in its own working directory, so DIR must
 * become absolute here.  DIR need not exist yet (the daemon creates it):
 * the longest part of it that exists is resolved with realpath, and the
 * rest is appended with "." and ".." applied by name.
 */
static char *
absolute_dir (const char *dir)
{
  _cleanup_free_ char *path = NULL, *real = NULL, *tail = NULL;
  char cwd[PATH_MAX];
  char *slash;

  if (dir[0] == '/')
    path = vv_strdup (dir);
  else if (getcwd (cwd, sizeof cwd) == NULL) {
    vv_error_errno (errno, "cannot make the restore directory '%s' "
                    "absolute: getcwd", dir);
    return NULL;
  }
  else
    path = vv_printf ("%s/%s", cwd, dir);
  if (path == NULL || (tail = vv_strdup ("")) == NULL)
    return NULL;

  /* Move components from the end of path to tail until path exists. */
  while ((real = realpath (path, NULL)) == NULL) {
    char *t;

    if (errno != ENOENT) {
      vv_error_errno (errno, "cannot resolve the restore directory '%s'",
                      dir);
      return NULL;
    }
    slash = strrchr (path, '/');
    if ((t = vv_printf ("%s/%s", slash + 1, tail)) == NULL)
      return NULL;
    free (tail);
    tail = t;
    *slash = '\0';
    if (path[0] == '\0') {
      path[0] = '/';
      path[1] = '\0';
    }
  }

  for (char *save = NULL, *c = strtok_r (tail, "/", &save); c;
       c = strtok_r (NULL, "/", &save)) {
    char *t;

    if (strcmp (c, ".") == 0)
      continue;
    if (strcmp (c, "..") == 0) {
      if ((slash = strrchr (real, '/')) != NULL)
        slash[slash == real ? 1 : 0] = '\0';
      continue;
    }
    if ((t = vv_printf ("%s%s%s", real,
                        strcmp (real, "/") == 0 ? "" : "/", c)) == NULL)
      return NULL;
    free (real);
    real = t;
  }
  return TAKE_PTR (real);
}

/* Starts a job on a backup: POST /v1/backups/{id}/{action}. */
static int
start_job (struct cli *cli, const char *backup_id, const char *action,
           json_object *body, bool wait,
           json_object **ret_answer, const char **ret_job_id)
{
  _cleanup_free_ char *path = cli_object_path ("backups", backup_id, action);
  _cleanup_json_ json_object *answer = NULL;
  const char *job_id;
  int r;

  if (path == NULL)
    return CLI_EXIT_FAILED;
  if (wait)
    cli_block_signals ();
  if ((r = cli_request (cli, "POST", path, body, &answer)) != CLI_EXIT_OK)
    return r;
  job_id = cli_get_str (json_object_object_get (answer, "job"), "id");
  if (job_id == NULL) {
    vv_error ("virtvaultd started a %s of %s but its answer has no job id",
              action, backup_id);
    return CLI_EXIT_FAILED;
  }
  *ret_job_id = job_id;         /* lives as long as the answer */
  *ret_answer = TAKE_PTR (answer);
  return CLI_EXIT_OK;
}

static int
get_backup (struct cli *cli, const char *backup_id, json_object **ret)
{
  _cleanup_free_ char *path = cli_object_path ("backups", backup_id, NULL);

  if (path == NULL)
    return CLI_EXIT_FAILED;
  return cli_request (cli, "GET", path, NULL, ret);
}

static int
run_verify (struct cli *cli, const struct cli_command *cmd,
            int argc, char **argv)
{
  enum { OPT_NO_WAIT = CLI_OPT_FIRST_COMMAND_OPTION };
  static const struct option longopts[] = {
    CLI_COMMON_LONGOPTS,
    { "no-wait", no_argument, NULL, OPT_NO_WAIT },
    { NULL, 0, NULL, 0 },
  };
  _cleanup_json_ json_object *body = NULL, *answer = NULL, *job = NULL;
  _cleanup_json_ json_object *backup = NULL;
  _cleanup_free_ char *what = NULL;
  const char *id, *job_id;
  bool wait = true;
  json_object *disks;
  size_t ndisks, nblocks = 0;
  int c, r;

  while ((c = getopt_long (argc, argv, CLI_SHORTOPTS, longopts,
                           NULL)) != -1) {
    if (c == OPT_NO_WAIT)
      wait = false;
    else if ((r = cli_common_option (cli, cmd, c, argv)) >= 0)
      return r;
  }
  if ((r = cli_check_args (cmd, argc, argv, 1, 1)) >= 0)
    return r;
  id = argv[optind];

  if ((body = json_object_new_object ()) == NULL)
    return CLI_EXIT_FAILED;
  if ((r = start_job (cli, id, "verify", body, wait, &answer,
                      &job_id)) != CLI_EXIT_OK)
    return r;
  if (!wait) {
    if (cli->json)
      cli_print_json (answer);
    else
      printf ("Verify of %s started as job %s\n", id, job_id);
    return CLI_EXIT_OK;
  }

  if ((what = vv_printf ("verify of %s", id)) == NULL)
    return CLI_EXIT_FAILED;
  if ((r = cli_wait_job (cli, job_id, what, &job)) != CLI_EXIT_OK)
    return r;
  if (cli->json) {
    cli_print_json (job);
    return CLI_EXIT_OK;
  }
  if ((r = get_backup (cli, id, &backup)) != CLI_EXIT_OK)
    return r;
  disks = cli_get_array (backup, "disks");
  ndisks = disks ? json_object_array_length (disks) : 0;
  /* Backups made before block digests have none to check. */
  for (size_t i = 0; i < ndisks; i++)
    if (cli_get_str (json_object_array_get_idx (disks, i), "blocks_sha256"))
      nblocks++;
  if (nblocks == ndisks)
    printf ("%s verified: %zu disk%s, sha256, block digests and qcow2 "
            "structure OK\n", id, ndisks, ndisks == 1 ? "" : "s");
  else
    printf ("%s verified: %zu disk%s, sha256 and qcow2 structure OK "
            "(%zu without block digests: made before they existed)\n",
            id, ndisks, ndisks == 1 ? "" : "s", ndisks - nblocks);
  return CLI_EXIT_OK;
}

/* The files the restore wrote: dir/<disk>.<format>, one per disk (of
 * those in the comma-separated only, when given).
 */
static bool
in_list (const char *list, const char *name)
{
  size_t len = strlen (name);

  for (const char *s = list; s; s = strchr (s, ','), s = s ? s + 1 : NULL)
    if (strncmp (s, name, len) == 0 && (s[len] == ',' || s[len] == '\0'))
      return true;
  return false;
}

static json_object *
restored_files (json_object *backup, const char *dir, const char *format,
                const char *only)
{
  json_object *disks = cli_get_array (backup, "disks");
  _cleanup_json_ json_object *files = json_object_new_array ();

  if (files == NULL)
    return NULL;
  for (size_t i = 0; disks && i < json_object_array_length (disks); i++) {
    const char *name = cli_get_str (json_object_array_get_idx (disks, i),
                                    "name");
    _cleanup_free_ char *file = NULL;

    if (name == NULL || (only && !in_list (only, name)))
      continue;
    if ((file = vv_printf ("%s/%s.%s", dir, name, format)) == NULL)
      return NULL;
    json_object_array_add (files, json_object_new_string (file));
  }
  return TAKE_PTR (files);
}

/* --disks vda,vdb as a JSON array. */
static json_object *
disk_list (const char *arg)
{
  _cleanup_json_ json_object *a = json_object_new_array ();
  _cleanup_free_ char *copy = vv_strdup (arg);
  char *save = NULL;

  if (a == NULL || copy == NULL)
    return NULL;
  for (char *d = strtok_r (copy, ",", &save); d;
       d = strtok_r (NULL, ",", &save))
    json_object_array_add (a, json_object_new_string (d));
  return TAKE_PTR (a);
}

/* Asks on the terminal before disks are replaced; without a terminal
 * only --yes will do.
 */
static int
confirm_in_place (struct cli *cli, const char *id)
{
  _cleanup_json_ json_object *backup = NULL;
  _cleanup_free_ char *line = NULL;
  const char *dom;
  size_t cap = 0;
  ssize_t len;
  int r;

  if ((r = get_backup (cli, id, &backup)) != CLI_EXIT_OK)
    return r;
  dom = cli_get_str (backup, "domain");
  if (dom == NULL)
    dom = "?";
  if (!isatty (STDIN_FILENO) || !isatty (STDERR_FILENO)) {
    vv_error ("--in-place replaces the disks of '%s'; add --yes to confirm",
              dom);
    return CLI_EXIT_USAGE;
  }
  fprintf (stderr, "Replace the disks of domain '%s' with backup %s? "
           "Their current content is lost. [y/N] ", dom, id);
  fflush (stderr);
  len = getline (&line, &cap, stdin);
  if (len > 0 && (strcmp (line, "y\n") == 0 || strcmp (line, "yes\n") == 0 ||
                  strcmp (line, "Y\n") == 0))
    return CLI_EXIT_OK;
  vv_error ("not confirmed; the disks of '%s' were not touched", dom);
  return CLI_EXIT_FAILED;
}

static void
print_list (const char *label, json_object *a)
{
  printf ("%s", label);
  for (size_t i = 0; a && i < json_object_array_length (a); i++)
    printf ("%s%s", i ? ", " : "",
            json_object_get_string (json_object_array_get_idx (a, i)));
  printf ("\n");
}

/* What an in-place or as-new restore did, from the plan the daemon sent
 * back when the job started.
 */
static void
print_restored (json_object *plan, const char *id, bool in_place,
                bool start)
{
  const char *dom = cli_get_str (plan, "domain");
  const char *uuid = cli_get_str (plan, "domain_uuid");
  const char *notes = cli_get_str (plan, "notes");
  json_object *disks = cli_get_array (plan, "disks");
  json_object *files = cli_get_array (plan, "files");

  if (in_place) {
    printf ("Restored backup %s over the disks of domain '%s' (%s)\n", id,
            dom ? dom : "?", uuid ? uuid : "?");
    print_list ("Disks replaced: ", files);
    printf ("Its checkpoints were deleted: the next backup is a full that "
            "starts a new chain\n");
  }
  else {
    printf ("Defined domain '%s' (UUID %s) from backup %s\n",
            dom ? dom : "?", uuid ? uuid : "?", id);
    print_list ("Disks: ", disks);
    print_list ("Images: ", files);
    /* One line per sentence: what was left out, dropped, changed. */
    for (const char *n = notes, *end; n && *n; n = end ? end + 2 : NULL) {
      end = strstr (n, "; ");
      printf ("Note: %.*s\n", end ? (int) (end - n) : (int) strlen (n), n);
    }
  }
  if (start)
    printf ("Domain '%s' started\n", dom ? dom : "?");
  else
    printf ("Start it with 'virsh start %s'\n", dom ? dom : "?");
}

static int
run_restore (struct cli *cli, const struct cli_command *cmd,
             int argc, char **argv)
{
  enum {
    OPT_NO_WAIT = CLI_OPT_FIRST_COMMAND_OPTION,
    OPT_TO, OPT_FORMAT, OPT_IN_PLACE, OPT_AS_NEW, OPT_YES, OPT_FORCE_STOP,
    OPT_STOP_TIMEOUT, OPT_DISKS, OPT_START, OPT_FORCE,
  };
  static const struct option longopts[] = {
    CLI_COMMON_LONGOPTS,
    { "no-wait", no_argument, NULL, OPT_NO_WAIT },
    { "to", required_argument, NULL, OPT_TO },
    { "format", required_argument, NULL, OPT_FORMAT },
    { "in-place", no_argument, NULL, OPT_IN_PLACE },
    { "as-new", required_argument, NULL, OPT_AS_NEW },
    { "yes", no_argument, NULL, OPT_YES },
    { "force-stop", no_argument, NULL, OPT_FORCE_STOP },
    { "stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT },
    { "disks", required_argument, NULL, OPT_DISKS },
    { "start", no_argument, NULL, OPT_START },
    { "force", no_argument, NULL, OPT_FORCE },
    { NULL, 0, NULL, 0 },
  };
  _cleanup_json_ json_object *body = NULL, *answer = NULL, *job = NULL;
  _cleanup_json_ json_object *backup = NULL, *files = NULL, *out = NULL;
  _cleanup_free_ char *what = NULL, *dir = NULL;
  const char *id, *job_id, *to = NULL, *format = NULL, *as_new = NULL;
  const char *disks = NULL, *stop_timeout = NULL;
  bool wait = true, in_place = false, yes = false, force_stop = false;
  bool start = false, force = false;
  long timeout = -1;
  int c, r;

  while ((c = getopt_long (argc, argv, CLI_SHORTOPTS, longopts,
                           NULL)) != -1) {
    switch (c) {
    case OPT_NO_WAIT: wait = false; break;
    case OPT_TO: to = optarg; break;
    case OPT_FORMAT: format = optarg; break;
    case OPT_IN_PLACE: in_place = true; break;
    case OPT_AS_NEW: as_new = optarg; break;
    case OPT_YES: yes = true; break;
    case OPT_FORCE_STOP: force_stop = true; break;
    case OPT_STOP_TIMEOUT: stop_timeout = optarg; break;
    case OPT_DISKS: disks = optarg; break;
    case OPT_START: start = true; break;
    case OPT_FORCE: force = true; break;
    default:
      if ((r = cli_common_option (cli, cmd, c, argv)) >= 0)
        return r;
    }
  }
  if ((r = cli_check_args (cmd, argc, argv, 1, 1)) >= 0)
    return r;
  id = argv[optind];
  if (in_place && (to || as_new))
    return cli_usage_error (cmd, "--in-place writes over the domain's own "
                            "disks; it takes neither --to nor --as-new");
  if (!in_place && !as_new && (to == NULL || to[0] == '\0'))
    return cli_usage_error (cmd, "missing --to DIR, --in-place or "
                            "--as-new NAME");
  if (as_new && as_new[0] == '\0')
    return cli_usage_error (cmd, "--as-new needs the new domain's name");
  if (format && strcmp (format, "qcow2") != 0 && strcmp (format, "raw") != 0)
    return cli_usage_error (cmd, "--format must be qcow2 or raw, not '%s'",
                            format);
  if (format && in_place)
    return cli_usage_error (cmd, "--format does not apply to --in-place: "
                            "each disk keeps its current format");
  if (!in_place && (force_stop || stop_timeout || yes))
    return cli_usage_error (cmd, "--yes, --force-stop and --stop-timeout go "
                            "with --in-place only");
  if (start && !in_place && !as_new)
    return cli_usage_error (cmd, "--start goes with --in-place or --as-new");
  if (stop_timeout) {
    char *end;
    errno = 0;
    timeout = strtol (stop_timeout, &end, 10);
    if (errno || end == stop_timeout || *end || timeout < 0 ||
        timeout > 600)
      return cli_usage_error (cmd, "--stop-timeout must be 0 to 600 seconds, "
                              "not '%s'", stop_timeout);
  }
  if (disks && disks[0] == '\0')
    return cli_usage_error (cmd, "--disks needs a list such as vda,vdb");
  if (to && (dir = absolute_dir (to)) == NULL)
    return CLI_EXIT_FAILED;
  if (in_place && !yes && (r = confirm_in_place (cli, id)) != CLI_EXIT_OK)
    return r;

  if ((body = json_object_new_object ()) == NULL)
    return CLI_EXIT_FAILED;
  if (dir)
    json_object_object_add (body, "to", json_object_new_string (dir));
  if (format || (!in_place && !as_new))
    json_object_object_add (body, "format",
                            json_object_new_string (format ? format
                                                    : "qcow2"));
  if (in_place) {
    json_object_object_add (body, "in_place", json_object_new_boolean (1));
    if (force_stop)
      json_object_object_add (body, "force_stop",
                              json_object_new_boolean (1));
    if (timeout >= 0)
      json_object_object_add (body, "stop_timeout",
                              json_object_new_int64 (timeout));
  }
  if (as_new)
    json_object_object_add (body, "as_new", json_object_new_string (as_new));
  if (disks)
    json_object_object_add (body, "disks", disk_list (disks));
  if (start)
    json_object_object_add (body, "start", json_object_new_boolean (1));
  if (force)
    json_object_object_add (body, "force", json_object_new_boolean (1));
  if ((r = start_job (cli, id, "restore", body, wait, &answer,
                      &job_id)) != CLI_EXIT_OK)
    return r;
  if (!wait) {
    if (cli->json)
      cli_print_json (answer);
    else if (in_place)
      printf ("Restore of %s in place started as job %s\n", id, job_id);
    else if (as_new)
      printf ("Restore of %s as new domain '%s' started as job %s\n", id,
              as_new, job_id);
    else
      printf ("Restore of %s to %s started as job %s\n", id, dir, job_id);
    return CLI_EXIT_OK;
  }

  if ((what = vv_printf ("restore of %s", id)) == NULL)
    return CLI_EXIT_FAILED;
  if ((r = cli_wait_job (cli, job_id, what, &job)) != CLI_EXIT_OK)
    return r;

  if (in_place || as_new) {
    json_object *plan = json_object_object_get (answer, "restore");
    if (cli->json) {
      if ((out = json_object_new_object ()) == NULL)
        return CLI_EXIT_FAILED;
      json_object_object_add (out, "job", json_object_get (job));
      json_object_object_add (out, "restore", json_object_get (plan));
      cli_print_json (out);
      return CLI_EXIT_OK;
    }
    print_restored (plan, id, in_place, start);
    return CLI_EXIT_OK;
  }

  if ((r = get_backup (cli, id, &backup)) != CLI_EXIT_OK)
    return r;
  if ((files = restored_files (backup, dir, format ? format : "qcow2",
                               disks)) == NULL)
    return CLI_EXIT_FAILED;

  if (cli->json) {
    if ((out = json_object_new_object ()) == NULL)
      return CLI_EXIT_FAILED;
    json_object_object_add (out, "job", json_object_get (job));
    json_object_object_add (out, "files", json_object_get (files));
    cli_print_json (out);
    return CLI_EXIT_OK;
  }
  for (size_t i = 0; i < json_object_array_length (files); i++)
    printf ("%s\n", json_object_get_string (json_object_array_get_idx (files,
                                                                       i)));
  return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_verify = {
  .name = "verify",
  .synopsis = "ID [--no-wait]",
  .summary = "Re-read a stored backup; check sha256, block digests and qcow2 structure",
  .help =
  "Waits for the verify job (progress bar on a terminal) and prints\n"
  "\"ID verified: N disks, sha256, block digests and qcow2 structure OK\";\n"
  "exit status 1\n"
  "with the reason when the check fails.  With --json: the finished job.\n"
  "A mismatch, a missing object or a broken image marks the backup\n"
  "corrupt (virtvault list and show say so, with the reason); a verify\n"
  "that passes clears the mark.  An unreachable target changes nothing.\n"
  "\n"
  "Options:\n"
  "  --no-wait       print the job id and return at once (with --json:\n"
  "                  {\"job\": ...})\n",
  .run = run_verify,
};

const struct cli_command cli_cmd_restore = {
  .name = "restore",
  .synopsis = "ID (--to DIR [--format qcow2|raw] | --in-place [--yes]\n"
  "        [--force-stop] [--stop-timeout SECS] | --as-new NAME [--to DIR]\n"
  "        [--format qcow2|raw]) [--disks vda,...] [--start] [--force]\n"
  "        [--no-wait]",
  .summary = "Restore the disks of a backup: to a directory, in place, "
  "or as a new domain",
  .help =
  "--to DIR writes DIR/<disk>.<format> for each disk (DIR is created if\n"
  "missing; existing files are not overwritten), verifying sha256 while\n"
  "reading, and prints the files written, one per line.  With --json:\n"
  "{\"job\": ..., \"files\": [...]}.\n"
  "\n"
  "--in-place replaces the disk images of the domain the backup was taken\n"
  "of (found by its UUID); the domain must be shut off, or --force-stop\n"
  "stops it once the restored disks are ready (a graceful shutdown, then\n"
  "destroy after --stop-timeout seconds, default 60).  Its definition is\n"
  "kept; each disk keeps its path, format, owner and mode.  Its\n"
  "checkpoints are deleted, so its next backup is a full.  Asks for\n"
  "confirmation on a terminal; elsewhere --yes is required.\n"
  "\n"
  "--as-new NAME defines a new domain from the domain XML stored with the\n"
  "backup, with a new UUID and new MAC addresses, on disks restored into\n"
  "DIR (--to; default /var/lib/libvirt/images/NAME).  Disks not restored\n"
  "are left out of it (cdroms stay).  It is not started without --start.\n"
  "With --json, both print {\"job\": ..., \"restore\": ...}.\n"
  "\n"
  "A backup marked corrupt by a verify, or an incremental resting on one,\n"
  "is refused unless --force is given (the restore still checks every\n"
  "block it reads).\n"
  "\n"
  "Options:\n"
  "  --to DIR        the directory (relative to the current directory;\n"
  "                  sent to the daemon as an absolute path)\n"
  "  --format FMT    qcow2 (default) or raw\n"
  "  --in-place      replace the domain's disks\n"
  "  --yes           do not ask before replacing disks\n"
  "  --force-stop    stop the domain if it runs\n"
  "  --stop-timeout SECS  graceful shutdown wait before destroy (0-600)\n"
  "  --as-new NAME   restore as a new domain called NAME\n"
  "  --disks LIST    only these disks of the backup (vda,vdb)\n"
  "  --start         start the domain afterwards\n"
  "  --force         restore a backup marked corrupt all the same\n"
  "  --no-wait       print the job id and return at once (with --json:\n"
  "                  {\"job\": ..., \"restore\": ...})\n",
  .run = run_restore,
};
