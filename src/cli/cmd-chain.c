/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>
/* Chains of backups: virtvault chain list [DOMAIN], chain show ID. */
#include <inttypes.h>
#include <string.h>

#include "cli/cli.h"
#include "util/error.h"
#include "util/strutil.h"

static int
run_chain_list (struct cli *cli, const struct cli_command *cmd,
                int argc, char **argv)
{
  static const char *const headers[] = {
    "ID", "DOMAIN", "TARGET", "FULL", "LAST", ">LENGTH", ">BACKUPS",
    ">SIZE", "CREATED", NULL
  };
  _cleanup_json_ json_object *list = NULL;
  _cleanup_table_ struct cli_table *t = NULL;
  int r;

  if ((r = cli_get_list (cli, cmd, argc, argv, "chains", true, &list)) >= 0)
    return r;
  if ((t = cli_table_new (headers)) == NULL)
    return CLI_EXIT_FAILED;
  for (size_t i = 0; i < json_object_array_length (list); i++) {
    json_object *c = json_object_array_get_idx (list, i);
    char size[CLI_SIZE_MAX], created[CLI_TIME_MAX], len[24], n[24];

    cli_format_size (c, "size_bytes", size);
    cli_format_time (cli_get_str (c, "created_at"), created);
    snprintf (len, sizeof len, "%" PRId64, cli_get_int (c, "length", 0));
    snprintf (n, sizeof n, "%" PRId64, cli_get_int (c, "backups", 0));
    if (cli_table_add (t, (const char *const[]) {
          cli_get_str (c, "id"), cli_get_str (c, "domain"),
          cli_get_str (c, "target"), cli_get_str (c, "full_id"),
          cli_get_str (c, "last_id"), len, n, size, created }) < 0)
      return CLI_EXIT_FAILED;
  }
  cli_table_print (t, stdout);
  return CLI_EXIT_OK;
}

static int
run_chain_show (struct cli *cli, const struct cli_command *cmd,
                int argc, char **argv)
{
  static const char *const headers[] = {
    ">POS", "ID", "TYPE", "STATUS", "PARENT", ">SIZE", "CREATED", NULL
  };
  _cleanup_json_ json_object *chain = NULL;
  _cleanup_table_ struct cli_table *t = NULL;
  _cleanup_fields_ struct cli_fields *f = NULL;
  json_object *backups;
  char size[CLI_SIZE_MAX], created[CLI_TIME_MAX], len[24];
  int r;

  if ((r = cli_show_on_object (cli, cmd, argc, argv, "GET", "chains", NULL,
                                &chain)) >= 0)
    return r;
  if ((f = cli_fields_new ()) == NULL || (t = cli_table_new (headers)) == NULL)
    return CLI_EXIT_FAILED;
  cli_format_size (chain, "size_bytes", size);
  cli_format_time (cli_get_str (chain, "created_at"), created);
  snprintf (len, sizeof len, "%" PRId64, cli_get_int (chain, "length", 0));
  if (cli_fields_add (f, "ID", cli_get_str (chain, "id")) < 0 ||
      cli_fields_add (f, "Domain", cli_get_str (chain, "domain")) < 0 ||
      cli_fields_add (f, "Domain UUID",
                      cli_get_str (chain, "domain_uuid")) < 0 ||
      cli_fields_add (f, "Target", cli_get_str (chain, "target")) < 0 ||
      cli_fields_add (f, "Full", cli_get_str (chain, "full_id")) < 0 ||
      cli_fields_add (f, "Last", cli_get_str (chain, "last_id")) < 0 ||
      cli_fields_add (f, "Length", len) < 0 ||
      cli_fields_add (f, "Size", size) < 0 ||
      cli_fields_add (f, "Created", created) < 0)
    return CLI_EXIT_FAILED;
  cli_fields_print (f, stdout);
  backups = cli_get_array (chain, "backups");
  for (size_t i = 0; backups && i < json_object_array_length (backups); i++) {
    json_object *b = json_object_array_get_idx (backups, i);
    const char *status = cli_get_str (b, "status");
    char pos[24], bsize[CLI_SIZE_MAX] = "-", bcreated[CLI_TIME_MAX];

    snprintf (pos, sizeof pos, "%" PRId64, cli_get_int (b, "chain_pos", 0));
    if (status && strcmp (status, "completed") == 0)
      cli_format_size (b, "size_bytes", bsize);
    cli_format_time (cli_get_str (b, "created_at"), bcreated);
    if (cli_table_add (t, (const char *const[]) {
          pos, cli_get_str (b, "id"), cli_get_str (b, "type"), status,
          cli_get_str (b, "parent_id"), bsize, bcreated }) < 0)
      return CLI_EXIT_FAILED;
  }
  printf ("\n");
  cli_table_print (t, stdout);
  return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_chain_list = {
  .name = "chain list",
  .synopsis = "[DOMAIN]",
  .summary = "List chains (a full backup and its incrementals), newest first",
  .help =
  "Prints a table: ID, DOMAIN, TARGET, FULL (its full backup), LAST (its\n"
  "newest completed backup), LENGTH (completed incrementals), BACKUPS\n"
  "(records of any status), SIZE (stored bytes), CREATED.  With --json:\n"
  "the array of chain objects (docs/api.md).\n",
  .run = run_chain_list,
};

const struct cli_command cli_cmd_chain_show = {
  .name = "chain show",
  .synopsis = "ID",
  .summary = "Show one chain with its backups in chain order",
  .help =
  "Prints \"key: value\" lines, then a table of the backups: POS, ID,\n"
  "TYPE, STATUS, PARENT, SIZE, CREATED.  With --json: the chain object\n"
  "with a \"backups\" array.\n",
  .run = run_chain_show,
};
