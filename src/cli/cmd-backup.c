/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>
/* virtvault backup DOMAIN [--wait] [--all-disks | --disks LIST]
 *                         [--target NAME] [--full | --incremental]
 *                         [--max-chain N] [--quiesce[=try]] [--pause]
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/error.h"
#include "util/strutil.h"

/* The daemon's limit too (docs/api.md). */
#define MAX_DISKS 64

static int
add_disks (const struct cli_command *cmd, json_object *body,
           const char *list)
{
  json_object *disks = json_object_new_array ();
  const char *p = list;
  size_t n = 0;

  if (disks == NULL)
    return CLI_EXIT_FAILED;
  json_object_object_add (body, "disks", disks);
  for (;;) {
    size_t len = strcspn (p, ",");

    if (len == 0)
      return cli_usage_error (cmd, "--disks '%s' has an empty disk name; "
                              "give names like vda,vdb", list);
    if (++n > MAX_DISKS)
      return cli_usage_error (cmd, "--disks names more than %d disks",
                              MAX_DISKS);
    json_object_array_add (disks, json_object_new_string_len (p, len));
    if (p[len] == '\0')
      return -1;
    p += len + 1;
  }
}

/* Prints the finished backup: its id, or the whole object in JSON. */
static int
print_backup (struct cli *cli, const char *backup_id)
{
  _cleanup_free_ char *path = NULL;
  _cleanup_json_ json_object *backup = NULL;
  int r;

  if (!cli->json) {
    printf ("%s\n", backup_id);
    return CLI_EXIT_OK;
  }
  if ((path = cli_object_path ("backups", backup_id, NULL)) == NULL)
    return CLI_EXIT_FAILED;
  if ((r = cli_request (cli, "GET", path, NULL, &backup)) != CLI_EXIT_OK)
    return r;
  cli_print_json (backup);
  return CLI_EXIT_OK;
}

static int
run_backup (struct cli *cli, const struct cli_command *cmd,
            int argc, char **argv)
{
  enum {
    OPT_WAIT = CLI_OPT_FIRST_COMMAND_OPTION,
    OPT_ALL_DISKS, OPT_DISKS, OPT_TARGET, OPT_FULL, OPT_INCREMENTAL,
    OPT_MAX_CHAIN, OPT_QUIESCE, OPT_PAUSE, OPT_PROTECT,
  };
  static const struct option longopts[] = {
    CLI_COMMON_LONGOPTS,
    { "wait", no_argument, NULL, OPT_WAIT },
    { "all-disks", no_argument, NULL, OPT_ALL_DISKS },
    { "disks", required_argument, NULL, OPT_DISKS },
    { "target", required_argument, NULL, OPT_TARGET },
    { "full", no_argument, NULL, OPT_FULL },
    { "incremental", no_argument, NULL, OPT_INCREMENTAL },
    { "max-chain", required_argument, NULL, OPT_MAX_CHAIN },
    { "quiesce", optional_argument, NULL, OPT_QUIESCE },
    { "pause", no_argument, NULL, OPT_PAUSE },
    { "protect", no_argument, NULL, OPT_PROTECT },
    { NULL, 0, NULL, 0 },
  };
  _cleanup_json_ json_object *body = NULL, *answer = NULL, *job = NULL;
  _cleanup_free_ char *what = NULL;
  const char *disks = NULL, *target = NULL, *job_id, *backup_id;
  const char *mode = NULL, *quiesce = NULL, *max_chain = NULL;
  bool wait = false, all_disks = false, pause = false, protect = false;
  long chain_n = 0;
  int c, r;

  while ((c = getopt_long (argc, argv, CLI_SHORTOPTS, longopts,
                           NULL)) != -1) {
    switch (c) {
    case OPT_WAIT: wait = true; break;
    case OPT_ALL_DISKS: all_disks = true; break;
    case OPT_DISKS: disks = optarg; break;
    case OPT_TARGET: target = optarg; break;
    case OPT_FULL:
    case OPT_INCREMENTAL:
      if (mode)
        return cli_usage_error (cmd, "--full and --incremental exclude each "
                                "other");
      mode = c == OPT_FULL ? "full" : "incremental";
      break;
    case OPT_MAX_CHAIN: max_chain = optarg; break;
    case OPT_QUIESCE: quiesce = optarg ? optarg : "on"; break;
    case OPT_PAUSE: pause = true; break;
    case OPT_PROTECT: protect = true; break;
    default:
      if ((r = cli_common_option (cli, cmd, c, argv)) >= 0)
        return r;
    }
  }
  if ((r = cli_check_args (cmd, argc, argv, 1, 1)) >= 0)
    return r;
  if (all_disks && disks)
    return cli_usage_error (cmd, "--all-disks and --disks exclude each "
                            "other");
  if (target && target[0] == '\0')
    return cli_usage_error (cmd, "--target needs a target name");
  if (max_chain) {
    char *end;
    chain_n = strtol (max_chain, &end, 10);
    if (end == max_chain || *end || chain_n < 1 || chain_n > 1000)
      return cli_usage_error (cmd, "--max-chain '%s' is not a number of "
                              "incremental backups from 1 to 1000",
                              max_chain);
  }
  if (quiesce && strcmp (quiesce, "on") != 0 && strcmp (quiesce, "try") != 0
      && strcmp (quiesce, "off") != 0)
    return cli_usage_error (cmd, "--quiesce=%s: give --quiesce, "
                            "--quiesce=try or --quiesce=off", quiesce);

  if ((body = json_object_new_object ()) == NULL)
    return CLI_EXIT_FAILED;
  json_object_object_add (body, "domain",
                          json_object_new_string (argv[optind]));
  if (target)
    json_object_object_add (body, "target", json_object_new_string (target));
  if (all_disks)
    json_object_object_add (body, "all_disks", json_object_new_boolean (1));
  if (mode)
    json_object_object_add (body, "mode", json_object_new_string (mode));
  if (max_chain)
    json_object_object_add (body, "max_chain",
                            json_object_new_int64 (chain_n));
  if (quiesce)
    json_object_object_add (body, "quiesce",
                            json_object_new_string (quiesce));
  if (pause)
    json_object_object_add (body, "pause", json_object_new_boolean (1));
  if (protect)
    json_object_object_add (body, "protect", json_object_new_boolean (1));
  if (disks && (r = add_disks (cmd, body, disks)) >= 0)
    return r;

  if (wait)
    cli_block_signals ();
  if ((r = cli_request (cli, "POST", "/v1/backups", body,
                        &answer)) != CLI_EXIT_OK)
    return r;

  job_id = cli_get_str (json_object_object_get (answer, "job"), "id");
  backup_id = cli_get_str (json_object_object_get (answer, "backup"), "id");
  if (backup_id == NULL)
    backup_id = cli_get_str (json_object_object_get (answer, "job"),
                             "backup_id");
  if (job_id == NULL || backup_id == NULL) {
    vv_error ("virtvaultd started a backup of '%s' but its answer has no "
              "job or backup id", argv[optind]);
    return CLI_EXIT_FAILED;
  }

  if (!wait) {
    if (cli->json)
      cli_print_json (answer);
    else
      printf ("Backup %s started as job %s\n", backup_id, job_id);
    return CLI_EXIT_OK;
  }

  if ((what = vv_printf ("backup %s of '%s'", backup_id,
                         argv[optind])) == NULL)
    return CLI_EXIT_FAILED;
  if ((r = cli_wait_job (cli, job_id, what, &job)) != CLI_EXIT_OK)
    return r;
  return print_backup (cli, backup_id);
}

const struct cli_command cli_cmd_backup = {
  .name = "backup",
  .synopsis = "DOMAIN [--wait] [--all-disks | --disks LIST] [--target NAME]\n"
  "       [--full | --incremental] [--max-chain N] [--quiesce[=try]] [--pause]\n"
  "       [--protect]",
  .summary = "Start a backup of a running domain",
  .help =
  "Without --wait, prints \"Backup bk-... started as job job-...\" (with\n"
  "--json: the daemon's answer, {\"job\": ..., \"backup\": ...}).\n"
  "\n"
  "Options:\n"
  "  --wait          wait until the backup ends, with a progress bar on a\n"
  "                  terminal; print the backup id (with --json: the\n"
  "                  finished backup).  Ctrl-C cancels the backup.\n"
  "  --all-disks     back up every disk (cdrom, read-only and shareable\n"
  "                  disks are skipped with a note); default: the first disk\n"
  "  --disks LIST    back up these disks, comma-separated (e.g. vda,vdb)\n"
  "  --target NAME   store the backup on this target (default: the\n"
  "                  default target, see 'virtvault target set-default')\n"
  "  --full          take a full backup (starts a new chain)\n"
  "  --incremental   copy only what changed since the chain's last\n"
  "                  completed backup; fails (saying why) when no usable\n"
  "                  chain exists.  Default: incremental when possible,\n"
  "                  else full; the backup's reason says which and why\n"
  "  --max-chain N   incrementals per chain (1..1000; default: the\n"
  "                  daemon's max_chain, 6); then a new full starts one\n"
  "  --quiesce[=try] freeze the guest filesystems (QEMU guest agent) while\n"
  "                  the checkpoint is created; fails when no agent\n"
  "                  answers, unless =try, which goes on and says so in\n"
  "                  the notes\n"
  "  --pause         suspend the domain while the checkpoint is created\n"
  "                  (the notes say for how long)\n"
  "  --protect       never delete this backup by retention or the manual\n"
  "                  limit (see 'virtvault unprotect')\n",
  .run = run_backup,
};
