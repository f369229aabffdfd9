#include <config.h>
/* Reading a backup back: virtvault verify ID, restore ID --to DIR. */
#include <errno.h>
#include <limits.h>
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
  size_t ndisks;
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
  ndisks = cli_get_array (backup, "disks")
    ? json_object_array_length (cli_get_array (backup, "disks")) : 0;
  printf ("%s verified: %zu disk%s, sha256 and qcow2 structure OK\n",
          id, ndisks, ndisks == 1 ? "" : "s");
  return CLI_EXIT_OK;
}

/* The files the restore wrote: dir/<disk>.<format>, one per disk. */
static json_object *
restored_files (json_object *backup, const char *dir, const char *format)
{
  json_object *disks = cli_get_array (backup, "disks");
  _cleanup_json_ json_object *files = json_object_new_array ();

  if (files == NULL)
    return NULL;
  for (size_t i = 0; disks && i < json_object_array_length (disks); i++) {
    const char *name = cli_get_str (json_object_array_get_idx (disks, i),
                                    "name");
    _cleanup_free_ char *file = NULL;

    if (name == NULL)
      continue;
    if ((file = vv_printf ("%s/%s.%s", dir, name, format)) == NULL)
      return NULL;
    json_object_array_add (files, json_object_new_string (file));
  }
  return TAKE_PTR (files);
}

static int
run_restore (struct cli *cli, const struct cli_command *cmd,
             int argc, char **argv)
{
  enum {
    OPT_NO_WAIT = CLI_OPT_FIRST_COMMAND_OPTION,
    OPT_TO, OPT_FORMAT,
  };
  static const struct option longopts[] = {
    CLI_COMMON_LONGOPTS,
    { "no-wait", no_argument, NULL, OPT_NO_WAIT },
    { "to", required_argument, NULL, OPT_TO },
    { "format", required_argument, NULL, OPT_FORMAT },
    { NULL, 0, NULL, 0 },
  };
  _cleanup_json_ json_object *body = NULL, *answer = NULL, *job = NULL;
  _cleanup_json_ json_object *backup = NULL, *files = NULL, *out = NULL;
  _cleanup_free_ char *what = NULL, *dir = NULL;
  const char *id, *job_id, *to = NULL, *format = "qcow2";
  bool wait = true;
  int c, r;

  while ((c = getopt_long (argc, argv, CLI_SHORTOPTS, longopts,
                           NULL)) != -1) {
    switch (c) {
    case OPT_NO_WAIT: wait = false; break;
    case OPT_TO: to = optarg; break;
    case OPT_FORMAT: format = optarg; break;
    default:
      if ((r = cli_common_option (cli, cmd, c, argv)) >= 0)
        return r;
    }
  }
  if ((r = cli_check_args (cmd, argc, argv, 1, 1)) >= 0)
    return r;
  id = argv[optind];
  if (to == NULL || to[0] == '\0')
    return cli_usage_error (cmd, "missing --to DIR");
  if (strcmp (format, "qcow2") != 0 && strcmp (format, "raw") != 0)
    return cli_usage_error (cmd, "--format must be qcow2 or raw, not '%s'",
                            format);
  if ((dir = absolute_dir (to)) == NULL)
    return CLI_EXIT_FAILED;

  if ((body = json_object_new_object ()) == NULL)
    return CLI_EXIT_FAILED;
  json_object_object_add (body, "to", json_object_new_string (dir));
  json_object_object_add (body, "format", json_object_new_string (format));
  if ((r = start_job (cli, id, "restore", body, wait, &answer,
                      &job_id)) != CLI_EXIT_OK)
    return r;
  if (!wait) {
    if (cli->json)
      cli_print_json (answer);
    else
      printf ("Restore of %s to %s started as job %s\n", id, dir, job_id);
    return CLI_EXIT_OK;
  }

  if ((what = vv_printf ("restore of %s", id)) == NULL)
    return CLI_EXIT_FAILED;
  if ((r = cli_wait_job (cli, job_id, what, &job)) != CLI_EXIT_OK)
    return r;
  if ((r = get_backup (cli, id, &backup)) != CLI_EXIT_OK)
    return r;
  if ((files = restored_files (backup, dir, format)) == NULL)
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
  .summary = "Re-read a stored backup; check sha256 and qcow2 structure",
  .help =
  "Waits for the verify job (progress bar on a terminal) and prints\n"
  "\"ID verified: N disks, sha256 and qcow2 structure OK\"; exit status 1\n"
  "with the reason when the check fails.  With --json: the finished job.\n"
  "\n"
  "Options:\n"
  "  --no-wait       print the job id and return at once (with --json:\n"
  "                  {\"job\": ...})\n",
  .run = run_verify,
};

const struct cli_command cli_cmd_restore = {
  .name = "restore",
  .synopsis = "ID --to DIR [--format qcow2|raw] [--no-wait]",
  .summary = "Restore every disk of a backup into a directory",
  .help =
  "Writes DIR/<disk>.<format> for each disk (DIR is created if missing;\n"
  "existing files are not overwritten), verifying sha256 while reading.\n"
  "Waits for the job (progress bar on a terminal) and prints the files\n"
  "written, one per line.  With --json: {\"job\": ..., \"files\": [...]}.\n"
  "\n"
  "Options:\n"
  "  --to DIR        the directory (relative to the current directory;\n"
  "                  sent to the daemon as an absolute path)\n"
  "  --format FMT    qcow2 (default) or raw\n"
  "  --no-wait       print the job id and return at once (with --json:\n"
  "                  {\"job\": ...})\n",
  .run = run_restore,
};
