/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>
/* virtvault target list | add | test | remove | import | set-default:
 * where backups are stored.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/error.h"
#include "util/strutil.h"

/* More than any plugin has keys; the daemon checks them anyway. */
#define MAX_PARAMS 64

/* "k=v,k2=v2", or NULL when there are none. */
static char *
join_params (json_object *target)
{
  json_object *params = cli_get_array (target, "params");
  char *s = NULL;

  for (size_t i = 0; params && i < json_object_array_length (params); i++) {
    const char *p = json_object_get_string (json_object_array_get_idx (params,
                                                                       i));
    char *n = vv_printf ("%s%s%s", s ? s : "", s ? "," : "", p ? p : "");

    free (s);
    if ((s = n) == NULL)
      return NULL;
  }
  return s;
}

static int
run_target_list (struct cli *cli, const struct cli_command *cmd,
                 int argc, char **argv)
{
  static const char *const headers[] = {
    "NAME", "DEFAULT", "URL", "PARAMS", ">BACKUPS", ">STORED",
    ">PRICE/GB-MONTH", "CREATED", NULL
  };
  _cleanup_json_ json_object *list = NULL;
  _cleanup_table_ struct cli_table *t = NULL;
  int r;

  if ((r = cli_get_list (cli, cmd, argc, argv, "targets", false,
                        &list)) >= 0)
    return r;
  if ((t = cli_table_new (headers)) == NULL)
    return CLI_EXIT_FAILED;
  for (size_t i = 0; i < json_object_array_length (list); i++) {
    json_object *tg = json_object_array_get_idx (list, i);
    _cleanup_free_ char *params = join_params (tg);
    char price[32], created[CLI_TIME_MAX], backups[32], stored[CLI_SIZE_MAX];

    snprintf (price, sizeof price, "%g", cli_get_double (tg, "price_per_gb_month"));
    cli_format_time (cli_get_str (tg, "created_at"), created);
    snprintf (backups, sizeof backups, "%" PRId64,
              cli_get_int (tg, "backups", 0));
    cli_format_size (tg, "stored_bytes", stored);
    if (cli_table_add (t, (const char *const[]) {
          cli_get_str (tg, "name"),
          cli_get_bool (tg, "default") ? "yes" : "-", cli_get_str (tg, "url"),
          params, backups, stored, price, created }) < 0)
      return CLI_EXIT_FAILED;
  }
  cli_table_print (t, stdout);
  return CLI_EXIT_OK;
}

static int
parse_price (const struct cli_command *cmd, const char *s, double *ret)
{
  char *end;
  double v;

  errno = 0;
  v = strtod (s, &end);
  if (errno != 0 || end == s || *end != '\0' || !isfinite (v) || v < 0)
    return cli_usage_error (cmd, "--price-per-gb-month must be a number "
                            ">= 0 (e.g. 0.02), not '%s'", s);
  *ret = v;
  return -1;
}

static int
run_target_add (struct cli *cli, const struct cli_command *cmd,
                int argc, char **argv)
{
  enum {
    OPT_URL = CLI_OPT_FIRST_COMMAND_OPTION,
    OPT_PARAM, OPT_PRICE, OPT_NO_CHECK,
  };
  static const struct option longopts[] = {
    CLI_COMMON_LONGOPTS,
    { "url", required_argument, NULL, OPT_URL },
    { "param", required_argument, NULL, OPT_PARAM },
    { "price-per-gb-month", required_argument, NULL, OPT_PRICE },
    { "no-check", no_argument, NULL, OPT_NO_CHECK },
    { NULL, 0, NULL, 0 },
  };
  _cleanup_json_ json_object *body = json_object_new_object ();
  bool check = true;
  _cleanup_json_ json_object *params = json_object_new_array ();
  _cleanup_json_ json_object *target = NULL;
  const char *url = NULL;
  bool have_price = false;
  double price = 0;
  int c, r;

  if (body == NULL || params == NULL)
    return CLI_EXIT_FAILED;
  while ((c = getopt_long (argc, argv, CLI_SHORTOPTS, longopts,
                           NULL)) != -1) {
    switch (c) {
    case OPT_URL:
      url = optarg;
      break;
    case OPT_PARAM:
      if (strchr (optarg, '=') == NULL || optarg[0] == '=')
        return cli_usage_error (cmd, "--param must be KEY=VALUE, not '%s'",
                                optarg);
      if (json_object_array_length (params) >= MAX_PARAMS)
        return cli_usage_error (cmd, "more than %d --param options",
                                MAX_PARAMS);
      json_object_array_add (params, json_object_new_string (optarg));
      break;
    case OPT_PRICE:
      if ((r = parse_price (cmd, optarg, &price)) >= 0)
        return r;
      have_price = true;
      break;
    case OPT_NO_CHECK:
      check = false;
      break;
    default:
      if ((r = cli_common_option (cli, cmd, c, argv)) >= 0)
        return r;
    }
  }
  if ((r = cli_check_args (cmd, argc, argv, 1, 1)) >= 0)
    return r;
  if (url == NULL || url[0] == '\0')
    return cli_usage_error (cmd, "missing --url URL (e.g. "
                            "file:///srv/backup)");

  json_object_object_add (body, "name", json_object_new_string (argv[optind]));
  json_object_object_add (body, "url", json_object_new_string (url));
  json_object_object_add (body, "params", json_object_get (params));
  if (have_price)
    json_object_object_add (body, "price_per_gb_month",
                            json_object_new_double (price));
  if (!check)
    json_object_object_add (body, "check", json_object_new_boolean (0));
  if ((r = cli_request (cli, "POST", "/v1/targets", body,
                        &target)) != CLI_EXIT_OK)
    return r;
  if (cli->json)
    cli_print_json (target);
  else
    printf ("Added target %s (%s)\n", argv[optind], url);
  return CLI_EXIT_OK;
}

static int
run_target_test (struct cli *cli, const struct cli_command *cmd,
                 int argc, char **argv)
{
  _cleanup_json_ json_object *answer = NULL;
  json_object *ok = NULL;
  int r;

  if ((r = cli_call_on_object (cli, cmd, argc, argv, "POST", "targets", "test",
                                &answer)) >= 0)
    return r;
  if (!json_object_object_get_ex (answer, "ok", &ok) ||
      !json_object_get_boolean (ok)) {
    vv_error ("target '%s' failed its test; see the daemon's log",
              argv[optind]);
    return CLI_EXIT_FAILED;
  }
  if (cli->json)
    cli_print_json (answer);
  else
    printf ("Target %s is OK: connect %.1f ms, write %.1f MiB/s (%.1f MiB), "
            "list %.1f ms, read %.1f ms (%.1f MiB/s), remove %.1f ms\n",
            argv[optind], cli_get_double (answer, "connect_ms"),
            cli_get_double (answer, "write_mib_per_s"),
            cli_get_int (answer, "probe_bytes", 0) / 1048576.0,
            cli_get_double (answer, "list_ms"),
            cli_get_double (answer, "read_ms"),
            cli_get_double (answer, "read_mib_per_s"),
            cli_get_double (answer, "remove_ms"));
  return CLI_EXIT_OK;
}

static int
run_target_remove (struct cli *cli, const struct cli_command *cmd,
                   int argc, char **argv)
{
  _cleanup_json_ json_object *answer = NULL;
  int r;

  if ((r = cli_show_on_object (cli, cmd, argc, argv, "DELETE", "targets", NULL,
                                &answer)) >= 0)
    return r;
  printf ("Removed target %s\n", argv[optind]);
  return CLI_EXIT_OK;
}

static int
run_target_set_default (struct cli *cli, const struct cli_command *cmd,
                        int argc, char **argv)
{
  _cleanup_json_ json_object *answer = NULL;
  int r;

  if ((r = cli_show_on_object (cli, cmd, argc, argv, "POST", "targets",
                                "default", &answer)) >= 0)
    return r;
  printf ("Target %s is the default target now\n", argv[optind]);
  return CLI_EXIT_OK;
}

static int
run_target_import (struct cli *cli, const struct cli_command *cmd,
                   int argc, char **argv)
{
  _cleanup_json_ json_object *answer = NULL;
  json_object *skipped;
  int64_t total;
  size_t n;
  int r;

  if ((r = cli_show_on_object (cli, cmd, argc, argv, "POST", "targets",
                                "import", &answer)) >= 0)
    return r;
  skipped = cli_get_array (answer, "skipped");
  n = skipped ? json_object_array_length (skipped) : 0;
  total = cli_get_int (answer, "skipped_total", (int64_t) n);
  printf ("Imported %" PRId64 " backup%s from target '%s' (%" PRId64
          " already known)%s\n",
          cli_get_int (answer, "imported", 0),
          cli_get_int (answer, "imported", 0) == 1 ? "" : "s", argv[optind],
          cli_get_int (answer, "known", 0), total > 0 ? "; skipped:" : "");
  for (size_t i = 0; i < n; i++) {
    json_object *s = json_object_array_get_idx (skipped, i);
    const char *object = cli_get_str (s, "object");
    const char *reason = cli_get_str (s, "reason");

    printf ("  %s: %s\n", object ? object : "?", reason ? reason : "?");
  }
  if (total > (int64_t) n)
    printf ("  ... and %" PRId64 " more\n", total - (int64_t) n);
  return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_target_list = {
  .name = "target list",
  .synopsis = "",
  .summary = "List the storage targets",
  .help =
  "Prints a table: NAME, DEFAULT (yes for the default target), URL,\n"
  "PARAMS, BACKUPS, STORED, PRICE/GB-MONTH, CREATED.  With --json: the\n"
  "array of targets (\"default\": true on the default one).\n",
  .run = run_target_list,
};

const struct cli_command cli_cmd_target_add = {
  .name = "target add",
  .synopsis = "NAME --url URL [--param KEY=VALUE]... "
              "[--price-per-gb-month X] [--no-check]",
  .summary = "Add a storage target (admin only)",
  .help =
  "NAME: 1-64 characters of [A-Za-z0-9._-].  With --json: the target.\n"
  "\n"
  "Options:\n"
  "  --url URL                 where backups go, e.g. file:///srv/backup\n"
  "                            (docs/plugins.md lists the schemes)\n"
  "  --param KEY=VALUE         a setting of the target's plugin; repeatable\n"
  "  --price-per-gb-month X    storage price, for cost reports (default 0)\n"
  "  --no-check                store it without checking that the target\n"
  "                            can be reached and written now\n"
  "\n"
  "Values of the plugin's secret parameters are shown as ***.  Give\n"
  "credentials as files readable only by root (credentials_file=...),\n"
  "never as values on the command line.\n",
  .run = run_target_add,
};

const struct cli_command cli_cmd_target_test = {
  .name = "target test",
  .synopsis = "NAME",
  .summary = "Check that a target can be reached and written",
  .help =
  "Runs the plugin's check (connect), then writes an 8 MiB probe under\n"
  ".virtvault-test/, lists it, reads 1 MiB back from its middle and\n"
  "removes it, and prints how long each step took: \"Target NAME is OK:\n"
  "connect ... ms, write ... MiB/s ...\", or the reason and exit status 1.\n"
  "With --json: {\"name\", \"ok\": true, \"connect_ms\",\n"
  "\"write_mib_per_s\", \"list_ms\", \"read_ms\", \"read_mib_per_s\",\n"
  "\"remove_ms\", \"probe_bytes\"}.\n",
  .run = run_target_test,
};

const struct cli_command cli_cmd_target_remove = {
  .name = "target remove",
  .synopsis = "NAME",
  .summary = "Remove a target no backup uses (admin only)",
  .help =
  "Refused while backups are stored on it, and for the default target\n"
  "(make another the default first).  Prints \"Removed target\n"
  "NAME\" (with --json: {\"deleted\": \"NAME\"}).\n",
  .run = run_target_remove,
};

const struct cli_command cli_cmd_target_import = {
  .name = "target import",
  .synopsis = "NAME",
  .summary = "Add the backups stored on a target to the catalog (admin "
             "only)",
  .help =
  "Reads every manifest on the target and records the complete backups\n"
  "the catalog lacks (after a lost catalog, or for a target made by\n"
  "another host).  Prints \"Imported N backups from target 'NAME' (K\n"
  "already known)\" and the manifests skipped, one per line with the\n"
  "reason.  Running it again changes nothing.  With --json:\n"
  "{\"imported\": N, \"known\": K, \"skipped\": [{\"object\": ...,\n"
  "\"reason\": ...}], \"skipped_total\": S}.\n",
  .run = run_target_import,
};

const struct cli_command cli_cmd_target_set_default = {
  .name = "target set-default",
  .synopsis = "NAME",
  .summary = "Make a target the default (admin only)",
  .help =
  "Backups that name no --target, and policies without a target, go to\n"
  "the default target from now on (backups already made stay where they\n"
  "are).  The choice is kept in the catalog; until one is made, the\n"
  "default_target of the daemon config is the default.  Prints \"Target\n"
  "NAME is the default target now\" (with --json: the target).\n",
  .run = run_target_set_default,
};
