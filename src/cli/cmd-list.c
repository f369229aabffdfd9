/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>
/* The backups in the catalog: virtvault list [DOMAIN], show ID, delete ID. */
#include <inttypes.h>
#include <string.h>

#include "cli/cli.h"
#include "util/error.h"
#include "util/strutil.h"

static int
run_list (struct cli *cli, const struct cli_command *cmd,
          int argc, char **argv)
{
  static const char *const headers[] = {
    "ID", "DOMAIN", "TYPE", "CHAIN", ">POS", "STATUS", ">SIZE", "CREATED",
    NULL
  };
  _cleanup_json_ json_object *list = NULL;
  _cleanup_table_ struct cli_table *t = NULL;
  int r;

  if ((r = cli_get_list (cli, cmd, argc, argv, "backups", true, &list)) >= 0)
    return r;
  if ((t = cli_table_new (headers)) == NULL)
    return CLI_EXIT_FAILED;
  for (size_t i = 0; i < json_object_array_length (list); i++) {
    json_object *b = json_object_array_get_idx (list, i);
    const char *status = cli_get_str (b, "status");
    char size[CLI_SIZE_MAX] = "-", created[CLI_TIME_MAX], pos[24];

    if (status && strcmp (status, "completed") == 0)
      cli_format_size (b, "size_bytes", size);
    /* Still completed in the catalog; what a reader needs to know. */
    if (cli_get_bool (b, "corrupt"))
      status = "corrupt";
    cli_format_time (cli_get_str (b, "created_at"), created);
    snprintf (pos, sizeof pos, "%" PRId64, cli_get_int (b, "chain_pos", 0));
    if (cli_table_add (t, (const char *const[]) {
          cli_get_str (b, "id"), cli_get_str (b, "domain"),
          cli_get_str (b, "type"), cli_get_str (b, "chain_id"), pos,
          status, size, created }) < 0)
      return CLI_EXIT_FAILED;
  }
  cli_table_print (t, stdout);
  return CLI_EXIT_OK;
}

static int
print_disks (json_object *backup)
{
  static const char *const headers[] = {
    "NAME", ">VIRTUAL SIZE", ">STORED", "SHA256", NULL
  };
  _cleanup_table_ struct cli_table *t = cli_table_new (headers);
  json_object *disks = cli_get_array (backup, "disks");

  if (t == NULL)
    return -1;
  for (size_t i = 0; disks && i < json_object_array_length (disks); i++) {
    json_object *d = json_object_array_get_idx (disks, i);
    char vsize[CLI_SIZE_MAX], stored[CLI_SIZE_MAX];

    cli_format_size (d, "virtual_size", vsize);
    cli_format_size (d, "stored_bytes", stored);
    if (cli_table_add (t, (const char *const[]) {
          cli_get_str (d, "name"), vsize, stored,
          cli_get_str (d, "sha256") }) < 0)
      return -1;
  }
  printf ("\n");
  cli_table_print (t, stdout);
  return 0;
}

static int
print_backup_details (json_object *b)
{
  _cleanup_fields_ struct cli_fields *f = cli_fields_new ();
  _cleanup_free_ char *size = NULL, *owner = NULL;
  char created[CLI_TIME_MAX], completed[CLI_TIME_MAX], hsize[32];
  char verified[CLI_TIME_MAX];
  _cleanup_free_ char *last_verify = NULL;
  int64_t bytes = cli_get_int (b, "size_bytes", -1);
  int64_t uid = cli_get_int (b, "owner_uid", -1);
  char pos[24];
  static const struct {
    const char *label, *key;
  } optional[] = {
    { "Reason", "reason" },
    { "Notes", "notes" },
    { "Error", "error" },
    { "Corrupt", "corrupt_reason" },
  };

  if (f == NULL)
    return -1;
  cli_format_time (cli_get_str (b, "created_at"), created);
  cli_format_time (cli_get_str (b, "completed_at"), completed);
  if (bytes >= 0) {
    vv_human_size ((uint64_t) bytes, hsize);
    size = vv_printf ("%s (%" PRId64 " bytes)", hsize, bytes);
  }
  if (uid >= 0)
    owner = vv_printf ("%" PRId64, uid);
  snprintf (pos, sizeof pos, "%" PRId64, cli_get_int (b, "chain_pos", 0));
  if (cli_get_str (b, "verified_at")) {
    cli_format_time (cli_get_str (b, "verified_at"), verified);
    last_verify = vv_printf ("%s (%s)", verified,
                             cli_get_str (b, "verify_result")
                             ? cli_get_str (b, "verify_result") : "?");
  }

  if (cli_fields_add (f, "ID", cli_get_str (b, "id")) < 0 ||
      cli_fields_add (f, "Domain", cli_get_str (b, "domain")) < 0 ||
      cli_fields_add (f, "Domain UUID", cli_get_str (b, "domain_uuid")) < 0 ||
      cli_fields_add (f, "Type", cli_get_str (b, "type")) < 0 ||
      cli_fields_add (f, "Status", cli_get_bool (b, "corrupt") ? "corrupt"
                      : cli_get_str (b, "status")) < 0 ||
      cli_fields_add (f, "Target", cli_get_str (b, "target")) < 0 ||
      cli_fields_add (f, "Chain", cli_get_str (b, "chain_id")) < 0 ||
      cli_fields_add (f, "Parent", cli_get_str (b, "parent_id")) < 0 ||
      cli_fields_add (f, "Position", pos) < 0 ||
      cli_fields_add (f, "Created", created) < 0 ||
      cli_fields_add (f, "Completed", completed) < 0 ||
      cli_fields_add (f, "Size", size) < 0 ||
      cli_fields_add (f, "Checkpoint", cli_get_str (b, "checkpoint")) < 0 ||
      cli_fields_add (f, "Job", cli_get_str (b, "job_id")) < 0 ||
      cli_fields_add (f, "Owner uid", owner) < 0 ||
      cli_fields_add (f, "Last verify", last_verify) < 0)
    return -1;
  for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++) {
    const char *v = cli_get_str (b, optional[i].key);

    if (v && v[0] && cli_fields_add (f, optional[i].label, v) < 0)
      return -1;
  }
  cli_fields_print (f, stdout);
  return print_disks (b);
}

static int
run_show (struct cli *cli, const struct cli_command *cmd,
          int argc, char **argv)
{
  _cleanup_json_ json_object *backup = NULL;
  int r;

  if ((r = cli_show_on_object (cli, cmd, argc, argv, "GET", "backups", NULL,
                                &backup)) >= 0)
    return r;
  return print_backup_details (backup) < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

static int
run_delete (struct cli *cli, const struct cli_command *cmd,
            int argc, char **argv)
{
  _cleanup_json_ json_object *answer = NULL;
  int r;

  if ((r = cli_show_on_object (cli, cmd, argc, argv, "DELETE", "backups", NULL,
                                &answer)) >= 0)
    return r;
  printf ("Deleted %s\n", argv[optind]);
  return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_list = {
  .name = "list",
  .synopsis = "[DOMAIN]",
  .summary = "List backups, newest first, of every domain or of one",
  .help =
  "Prints a table: ID, DOMAIN, TYPE, CHAIN, POS (0 for the full, n for\n"
  "its n-th incremental), STATUS (corrupt for a completed backup a\n"
  "verify found damaged), SIZE (stored bytes), CREATED (local time).\n"
  "DOMAIN is a domain name or UUID.  With --json:\n"
  "the array of backup objects (docs/api.md).\n",
  .run = run_list,
};

const struct cli_command cli_cmd_show = {
  .name = "show",
  .synopsis = "ID",
  .summary = "Show one backup in detail, with its disks",
  .help =
  "Prints one \"key: value\" per line (reason, notes, error and why it\n"
  "is corrupt only when present; the last verify, when and its result),\n"
  "then a table of the disks: NAME, VIRTUAL SIZE, STORED,\n"
  "SHA256.  With --json: the backup object.\n",
  .run = run_show,
};

const struct cli_command cli_cmd_delete = {
  .name = "delete",
  .synopsis = "ID",
  .summary = "Delete a backup from its target and the catalog",
  .help =
  "Prints \"Deleted ID\" (with --json: {\"deleted\": \"ID\"}).\n",
  .run = run_delete,
};
