/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>
/* virtvault policy create | edit | list | show | pause | resume | delete |
 * attach | detach | runs; protect / unprotect ID; instance list | purge;
 * debug clock.  The daemon checks every value and names the field.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/error.h"
#include "util/strutil.h"

/* ---- create / edit ---- */

#define POLICY_OPTIONS_HELP \
  "  --schedule daily|weekly  when it runs (create: required)\n" \
  "  --at HH:MM        local time of the run (create: required)\n" \
  "  --day DAY         weekly only: mon .. sun, the day of the full backup\n" \
  "  --tz ZONE         IANA timezone, e.g. Europe/Berlin (default UTC)\n" \
  "  --window DUR      start within this time after --at, per instance\n" \
  "                    (e.g. 2h, 90m; default 0)\n" \
  "  --max-chain N     incrementals per chain (default 6; 0: fulls only)\n" \
  "  --retention N     chains kept (default 3)\n" \
  "  --device primary|all  the boot disk (default) or every disk\n" \
  "  --target NAME     where backups go (default: the daemon's default)\n" \
  "  --quiesce off|try|on  freeze guest filesystems (default off)\n" \
  "  --keep RULES      also keep e.g. 1d:7,1w:4,1M:12 (units h d w M y)\n" \
  "  --max-age DUR     automatic backups expire after e.g. 90d\n" \
  "  --max-backups N   at most N automatic backups per instance\n" \
  "  --verify-every DAYS  re-verify each completed backup every DAYS days\n" \
  "                    (1-365; 0, the default: never)\n"

static int
run_policy_set (struct cli *cli, const struct cli_command *cmd,
                int argc, char **argv, bool create)
{
  enum {
    OPT_SCHEDULE = CLI_OPT_FIRST_COMMAND_OPTION, OPT_AT, OPT_DAY, OPT_TZ,
    OPT_WINDOW, OPT_MAX_CHAIN, OPT_RETENTION, OPT_DEVICE, OPT_TARGET,
    OPT_QUIESCE, OPT_KEEP, OPT_MAX_AGE, OPT_MAX_BACKUPS, OPT_VERIFY_EVERY,
  };
  static const struct option longopts[] = {
    CLI_COMMON_LONGOPTS,
    { "schedule", required_argument, NULL, OPT_SCHEDULE },
    { "at", required_argument, NULL, OPT_AT },
    { "day", required_argument, NULL, OPT_DAY },
    { "tz", required_argument, NULL, OPT_TZ },
    { "window", required_argument, NULL, OPT_WINDOW },
    { "max-chain", required_argument, NULL, OPT_MAX_CHAIN },
    { "retention", required_argument, NULL, OPT_RETENTION },
    { "device", required_argument, NULL, OPT_DEVICE },
    { "target", required_argument, NULL, OPT_TARGET },
    { "quiesce", required_argument, NULL, OPT_QUIESCE },
    { "keep", required_argument, NULL, OPT_KEEP },
    { "max-age", required_argument, NULL, OPT_MAX_AGE },
    { "max-backups", required_argument, NULL, OPT_MAX_BACKUPS },
    { "verify-every", required_argument, NULL, OPT_VERIFY_EVERY },
    { NULL, 0, NULL, 0 },
  };
  static const char *const keys[] = {
    [OPT_SCHEDULE - OPT_SCHEDULE] = "schedule", [OPT_AT - OPT_SCHEDULE] = "at",
    [OPT_DAY - OPT_SCHEDULE] = "day", [OPT_TZ - OPT_SCHEDULE] = "tz",
    [OPT_WINDOW - OPT_SCHEDULE] = "window",
    [OPT_MAX_CHAIN - OPT_SCHEDULE] = "max_chain",
    [OPT_RETENTION - OPT_SCHEDULE] = "retention",
    [OPT_DEVICE - OPT_SCHEDULE] = "device",
    [OPT_TARGET - OPT_SCHEDULE] = "target",
    [OPT_QUIESCE - OPT_SCHEDULE] = "quiesce",
    [OPT_KEEP - OPT_SCHEDULE] = "keep",
    [OPT_MAX_AGE - OPT_SCHEDULE] = "max_age",
    [OPT_MAX_BACKUPS - OPT_SCHEDULE] = "max_backups",
    [OPT_VERIFY_EVERY - OPT_SCHEDULE] = "verify_every",
  };
  _cleanup_json_ json_object *body = json_object_new_object ();
  _cleanup_json_ json_object *answer = NULL;
  _cleanup_free_ char *path = NULL;
  size_t given = 0;
  int c, r;

  if (body == NULL)
    return CLI_EXIT_FAILED;
  while ((c = getopt_long (argc, argv, CLI_SHORTOPTS, longopts,
                           NULL)) != -1) {
    if (c >= OPT_SCHEDULE && c <= OPT_VERIFY_EVERY) {
      const char *key = keys[c - OPT_SCHEDULE];
      if (json_object_object_get_ex (body, key, NULL))
        return cli_usage_error (cmd, "option '--%s' is given twice",
                                longopts[3 + c - OPT_SCHEDULE].name);
      /* Counts go as text: the daemon's message then quotes them. */
      json_object_object_add (body, key, json_object_new_string (optarg));
      given++;
      continue;
    }
    if ((r = cli_common_option (cli, cmd, c, argv)) >= 0)
      return r;
  }
  if ((r = cli_check_args (cmd, argc, argv, 1, 1)) >= 0)
    return r;
  if (create) {
    json_object_object_add (body, "name",
                            json_object_new_string (argv[optind]));
    if (!json_object_object_get_ex (body, "schedule", NULL))
      return cli_usage_error (cmd, "missing --schedule daily|weekly");
    if (!json_object_object_get_ex (body, "at", NULL))
      return cli_usage_error (cmd, "missing --at HH:MM");
    r = cli_request (cli, "POST", "/v1/policies", body, &answer);
  }
  else {
    if (given == 0)
      return cli_usage_error (cmd, "nothing to change: give at least one "
                              "option");
    if ((path = cli_object_path ("policies", argv[optind], "edit")) == NULL)
      return CLI_EXIT_FAILED;
    r = cli_request (cli, "POST", path, body, &answer);
  }
  if (r != CLI_EXIT_OK)
    return r;
  if (cli->json)
    cli_print_json (answer);
  else
    printf ("Policy %s %s: %s\n", cli_get_str (answer, "name"),
            create ? "created" : "changed", cli_get_str (answer, "summary"));
  return CLI_EXIT_OK;
}

static int
run_policy_create (struct cli *cli, const struct cli_command *cmd,
                   int argc, char **argv)
{
  return run_policy_set (cli, cmd, argc, argv, true);
}

static int
run_policy_edit (struct cli *cli, const struct cli_command *cmd,
                 int argc, char **argv)
{
  return run_policy_set (cli, cmd, argc, argv, false);
}

/* ---- list / show: one card per policy ---- */

/* What scheduled verify found, on every card. */
static void
print_verify_line (json_object *p)
{
  int64_t every = cli_get_int (p, "verify_every", 0);
  int64_t corrupt = cli_get_int (p, "corrupt_backups", 0);
  char when[CLI_TIME_MAX];

  cli_format_time (cli_get_str (p, "last_verified_at"), when);
  if (every)
    printf ("  Verify: every %" PRId64 " day%s", every, every == 1 ? "" : "s");
  else
    printf ("  Verify: off");
  printf ("; last verify: %s; corrupt backups: %" PRId64 " of %" PRId64
          "\n", when, corrupt, cli_get_int (p, "backups", 0));
}

static void
print_card (json_object *p, bool full)
{
  json_object *inst = cli_get_array (p, "instances");
  json_object *keep = cli_get_array (p, "keep");
  size_t ni = inst ? json_object_array_length (inst) : 0;
  const char *err = cli_get_str (p, "last_error");
  int64_t chain = cli_get_int (p, "max_chain", 0);

  printf ("%s  [%s]\n", cli_get_str (p, "name"), cli_get_str (p, "status"));
  printf ("  %s\n", cli_get_str (p, "summary"));
  printf ("  Instances: %zu", ni);
  for (size_t i = 0; i < ni; i++)
    printf ("%s%s", i ? ", " : " (",
            cli_get_str (json_object_array_get_idx (inst, i), "domain"));
  printf ("%s\n", ni ? ")" : "");
  printf ("  Retention: %" PRId64 " chain%s; ", cli_get_int (p, "retention", 0),
          cli_get_int (p, "retention", 0) == 1 ? "" : "s");
  if (chain)
    printf ("chain length: full + %" PRId64 " incrementals\n", chain);
  else
    printf ("full backups only\n");
  if (full) {
    char when[CLI_TIME_MAX];
    printf ("  Device: %s; target: %s; quiesce: %s\n",
            cli_get_str (p, "device"),
            cli_get_str (p, "target") ? cli_get_str (p, "target") : "(default)",
            cli_get_str (p, "quiesce"));
    if (keep && json_object_array_length (keep)) {
      printf ("  Keep:");
      for (size_t i = 0; i < json_object_array_length (keep); i++) {
        json_object *k = json_object_array_get_idx (keep, i);
        printf ("%s%s:%" PRId64, i ? "," : " ", cli_get_str (k, "interval"),
                cli_get_int (k, "count", 0));
      }
      printf ("\n");
    }
    if (cli_get_str (p, "max_age"))
      printf ("  Max age: %s\n", cli_get_str (p, "max_age"));
    if (cli_get_int (p, "max_backups", 0))
      printf ("  Max backups: %" PRId64 "\n", cli_get_int (p, "max_backups", 0));
    for (size_t i = 0; i < ni; i++) {
      json_object *a = json_object_array_get_idx (inst, i);
      cli_format_time (cli_get_str (a, "next_run"), when);
      printf ("  Next run of %s: %s\n", cli_get_str (a, "domain"), when);
    }
  }
  print_verify_line (p);
  printf ("  Last error: %s\n", err ? err : "-");
}

static int
run_policy_list (struct cli *cli, const struct cli_command *cmd,
                 int argc, char **argv)
{
  _cleanup_json_ json_object *list = NULL;
  int r;

  if ((r = cli_get_list (cli, cmd, argc, argv, "policies", false,
                        &list)) >= 0)
    return r;
  if (json_object_array_length (list) == 0)
    printf ("No policies; create one with 'virtvault policy create'.\n");
  for (size_t i = 0; i < json_object_array_length (list); i++) {
    if (i)
      printf ("\n");
    print_card (json_object_array_get_idx (list, i), false);
  }
  return CLI_EXIT_OK;
}

static int
run_policy_show (struct cli *cli, const struct cli_command *cmd,
                 int argc, char **argv)
{
  _cleanup_json_ json_object *p = NULL;
  int r;

  if ((r = cli_show_on_object (cli, cmd, argc, argv, "GET", "policies", NULL,
                               &p)) >= 0)
    return r;
  print_card (p, true);
  return CLI_EXIT_OK;
}

static int
simple_action (struct cli *cli, const struct cli_command *cmd, int argc,
               char **argv, const char *method, const char *collection,
               const char *action, const char *done)
{
  _cleanup_json_ json_object *a = NULL;
  int r;

  if ((r = cli_show_on_object (cli, cmd, argc, argv, method, collection,
                               action, &a)) >= 0)
    return r;
  if (cli_get_str (a, "message"))
    printf ("%s\n", cli_get_str (a, "message"));
  else
    printf ("%s %s\n", argv[optind], done);
  return CLI_EXIT_OK;
}

static int
run_policy_pause (struct cli *cli, const struct cli_command *cmd,
                  int argc, char **argv)
{
  return simple_action (cli, cmd, argc, argv, "POST", "policies", "pause",
                        "paused");
}

static int
run_policy_resume (struct cli *cli, const struct cli_command *cmd,
                   int argc, char **argv)
{
  return simple_action (cli, cmd, argc, argv, "POST", "policies", "resume",
                        "active");
}

static int
run_policy_delete (struct cli *cli, const struct cli_command *cmd,
                   int argc, char **argv)
{
  return simple_action (cli, cmd, argc, argv, "DELETE", "policies", NULL,
                        "deleted");
}

static int
run_policy_detach (struct cli *cli, const struct cli_command *cmd,
                   int argc, char **argv)
{
  return simple_action (cli, cmd, argc, argv, "POST", "instances", "detach",
                        "detached");
}

static int
run_protect (struct cli *cli, const struct cli_command *cmd,
             int argc, char **argv)
{
  return simple_action (cli, cmd, argc, argv, "POST", "backups", "protect",
                        "is protected");
}

static int
run_unprotect (struct cli *cli, const struct cli_command *cmd,
               int argc, char **argv)
{
  return simple_action (cli, cmd, argc, argv, "POST", "backups", "unprotect",
                        "is no longer protected");
}

static int
run_policy_attach (struct cli *cli, const struct cli_command *cmd,
                   int argc, char **argv)
{
  _cleanup_json_ json_object *body = json_object_new_object ();
  _cleanup_json_ json_object *a = NULL;
  _cleanup_free_ char *path = NULL;
  int r;

  if ((r = cli_parse_plain (cli, cmd, argc, argv, 2, 2)) >= 0)
    return r;
  if (body == NULL
      || (path = cli_object_path ("policies", argv[optind],
                                  "attach")) == NULL)
    return CLI_EXIT_FAILED;
  json_object_object_add (body, "domain",
                          json_object_new_string (argv[optind + 1]));
  if ((r = cli_request (cli, "POST", path, body, &a)) != CLI_EXIT_OK)
    return r;
  if (cli->json)
    cli_print_json (a);
  else
    printf ("%s attached to policy %s: %s\n", argv[optind + 1],
            argv[optind], cli_get_str (a, "summary"));
  return CLI_EXIT_OK;
}

static int
run_policy_runs (struct cli *cli, const struct cli_command *cmd,
                 int argc, char **argv)
{
  static const char *const headers[] = {
    "SCHEDULED", "DOMAIN", "TYPE", "RESULT", "BACKUP", "MESSAGE", NULL
  };
  _cleanup_json_ json_object *list = NULL;
  _cleanup_table_ struct cli_table *t = NULL;
  _cleanup_free_ char *path = NULL;
  int r;

  if ((r = cli_parse_plain (cli, cmd, argc, argv, 1, 1)) >= 0)
    return r;
  if ((path = cli_object_path ("policies", argv[optind], "runs")) == NULL)
    return CLI_EXIT_FAILED;
  if ((r = cli_request (cli, "GET", path, NULL, &list)) != CLI_EXIT_OK)
    return r;
  if (cli->json) {
    cli_print_json (list);
    return CLI_EXIT_OK;
  }
  if ((t = cli_table_new (headers)) == NULL)
    return CLI_EXIT_FAILED;
  for (size_t i = 0; i < json_object_array_length (list); i++) {
    json_object *o = json_object_array_get_idx (list, i);
    char when[CLI_TIME_MAX];
    cli_format_time (cli_get_str (o, "scheduled_for"), when);
    const char *cells[] = {
      when, cli_get_str (o, "domain"), cli_get_str (o, "kind"),
      cli_get_str (o, "result"), cli_get_str (o, "backup_id"),
      cli_get_str (o, "message"), NULL
    };
    if (cli_table_add (t, cells) == -1)
      return CLI_EXIT_FAILED;
  }
  cli_table_print (t, stdout);
  return CLI_EXIT_OK;
}

/* ---- instances ---- */

static int
run_instance_list (struct cli *cli, const struct cli_command *cmd,
                   int argc, char **argv)
{
  static const char *const headers[] = {
    "NAME", "UUID", "POLICY", ">BACKUPS", ">SIZE", ">MONTHLY", ">HOURLY", NULL
  };
  _cleanup_json_ json_object *list = NULL;
  _cleanup_table_ struct cli_table *t = NULL;
  int r;

  if ((r = cli_get_list (cli, cmd, argc, argv, "instances", false,
                        &list)) >= 0)
    return r;
  if ((t = cli_table_new (headers)) == NULL)
    return CLI_EXIT_FAILED;
  for (size_t i = 0; i < json_object_array_length (list); i++) {
    json_object *o = json_object_array_get_idx (list, i), *m, *h;
    char n[32], size[32], monthly[32] = "-", hourly[32] = "-";
    snprintf (n, sizeof n, "%" PRId64, cli_get_int (o, "backups", 0));
    vv_human_size ((uint64_t) cli_get_int (o, "size_bytes", 0), size);
    if (json_object_object_get_ex (o, "monthly_cost", &m) && m)
      snprintf (monthly, sizeof monthly, "%.2f", json_object_get_double (m));
    if (json_object_object_get_ex (o, "hourly_cost", &h) && h)
      snprintf (hourly, sizeof hourly, "%.4f", json_object_get_double (h));
    const char *cells[] = {
      cli_get_str (o, "name"), cli_get_str (o, "uuid"),
      cli_get_str (o, "policy"), n, size, monthly, hourly, NULL
    };
    if (cli_table_add (t, cells) == -1)
      return CLI_EXIT_FAILED;
  }
  cli_table_print (t, stdout);
  return CLI_EXIT_OK;
}

static int
run_instance_purge (struct cli *cli, const struct cli_command *cmd,
                    int argc, char **argv)
{
  enum { OPT_YES = CLI_OPT_FIRST_COMMAND_OPTION };
  static const struct option longopts[] = {
    CLI_COMMON_LONGOPTS,
    { "yes", no_argument, NULL, OPT_YES },
    { NULL, 0, NULL, 0 },
  };
  _cleanup_json_ json_object *a = NULL;
  _cleanup_free_ char *path = NULL;
  bool yes = false;
  int c, r;

  while ((c = getopt_long (argc, argv, CLI_SHORTOPTS, longopts,
                           NULL)) != -1) {
    if (c == OPT_YES)
      yes = true;
    else if ((r = cli_common_option (cli, cmd, c, argv)) >= 0)
      return r;
  }
  if ((r = cli_check_args (cmd, argc, argv, 1, 1)) >= 0)
    return r;
  if (!yes)
    return cli_usage_error (cmd, "this deletes every backup of '%s', "
                            "protected ones too; add --yes to go on",
                            argv[optind]);
  if ((path = cli_object_path ("instances", argv[optind], "purge")) == NULL)
    return CLI_EXIT_FAILED;
  if ((r = cli_request (cli, "POST", path, NULL, &a)) != CLI_EXIT_OK)
    return r;
  if (cli->json)
    cli_print_json (a);
  else
    printf ("Deleted %zu backups of %s\n",
            json_object_array_length (cli_get_array (a, "deleted")),
            argv[optind]);
  return CLI_EXIT_OK;
}

/* ---- debug clock ---- */

static int
run_debug_clock (struct cli *cli, const struct cli_command *cmd,
                 int argc, char **argv)
{
  _cleanup_json_ json_object *body = NULL, *a = NULL;
  const char *verb;
  int r;

  if ((r = cli_parse_plain (cli, cmd, argc, argv, 1, 2)) >= 0)
    return r;
  verb = argv[optind];
  if (strcmp (verb, "show") == 0) {
    if (argc - optind != 1)
      return cli_usage_error (cmd, "'show' takes no argument");
    r = cli_request (cli, "GET", "/v1/debug/clock", NULL, &a);
  }
  else if (strcmp (verb, "set") == 0 || strcmp (verb, "advance") == 0) {
    if (argc - optind != 2)
      return cli_usage_error (cmd, "'%s' needs %s", verb,
                              verb[0] == 's' ? "a time such as "
                              "2026-11-24T01:00:00Z" : "a duration such as 1d");
    if ((body = json_object_new_object ()) == NULL)
      return CLI_EXIT_FAILED;
    json_object_object_add (body, verb,
                            json_object_new_string (argv[optind + 1]));
    r = cli_request (cli, "POST", "/v1/debug/clock", body, &a);
  }
  else
    return cli_usage_error (cmd, "unknown action '%s'; use set, advance or "
                            "show", verb);
  if (r != CLI_EXIT_OK)
    return r;
  if (cli->json)
    cli_print_json (a);
  else
    printf ("%s%s\n", cli_get_str (a, "now"),
            json_object_get_boolean (json_object_object_get (a, "test_clock"))
            ? " (test clock)" : "");
  return CLI_EXIT_OK;
}

/* ---- the table ---- */

const struct cli_command cli_cmd_policy_create = {
  .name = "policy create",
  .synopsis = "NAME --schedule daily|weekly --at HH:MM [options]",
  .summary = "Create a backup policy",
  .help = "Options:\n" POLICY_OPTIONS_HELP,
  .run = run_policy_create,
};
const struct cli_command cli_cmd_policy_edit = {
  .name = "policy edit",
  .synopsis = "NAME [options]",
  .summary = "Change settings of a policy (as for create)",
  .help = "Options (what is not given stays):\n" POLICY_OPTIONS_HELP,
  .run = run_policy_edit,
};
const struct cli_command cli_cmd_policy_list = {
  .name = "policy list", .synopsis = "",
  .summary = "Show every policy as a card", .help = "",
  .run = run_policy_list,
};
const struct cli_command cli_cmd_policy_show = {
  .name = "policy show", .synopsis = "NAME",
  .summary = "Show one policy in full, with the next runs", .help = "",
  .run = run_policy_show,
};
const struct cli_command cli_cmd_policy_pause = {
  .name = "policy pause", .synopsis = "NAME",
  .summary = "Stop running a policy until resumed", .help = "",
  .run = run_policy_pause,
};
const struct cli_command cli_cmd_policy_resume = {
  .name = "policy resume", .synopsis = "NAME",
  .summary = "Run a paused (or failed) policy again", .help = "",
  .run = run_policy_resume,
};
const struct cli_command cli_cmd_policy_delete = {
  .name = "policy delete", .synopsis = "NAME",
  .summary = "Delete a policy (its backups stay)", .help = "",
  .run = run_policy_delete,
};
const struct cli_command cli_cmd_policy_attach = {
  .name = "policy attach", .synopsis = "NAME DOMAIN",
  .summary = "Back up a domain by a policy (one policy per domain)",
  .help = "", .run = run_policy_attach,
};
const struct cli_command cli_cmd_policy_detach = {
  .name = "policy detach", .synopsis = "DOMAIN",
  .summary = "Stop backing up a domain by its policy (its backups stay)",
  .help = "", .run = run_policy_detach,
};
const struct cli_command cli_cmd_policy_runs = {
  .name = "policy runs", .synopsis = "NAME",
  .summary = "Recent runs of a policy: when, type, result", .help = "",
  .run = run_policy_runs,
};
const struct cli_command cli_cmd_protect = {
  .name = "protect", .synopsis = "ID",
  .summary = "Keep a backup from retention and limits", .help = "",
  .run = run_protect,
};
const struct cli_command cli_cmd_unprotect = {
  .name = "unprotect", .synopsis = "ID",
  .summary = "Let retention and limits delete a backup again", .help = "",
  .run = run_unprotect,
};
const struct cli_command cli_cmd_instance_list = {
  .name = "instance list", .synopsis = "",
  .summary = "Domains with backups: policy, size and costs", .help = "",
  .run = run_instance_list,
};
const struct cli_command cli_cmd_instance_purge = {
  .name = "instance purge", .synopsis = "NAME --yes",
  .summary = "Delete every backup of a domain (administrators)",
  .help = "Options:\n  --yes           confirm: protected backups go too\n",
  .run = run_instance_purge,
};
const struct cli_command cli_cmd_debug_clock = {
  .name = "debug clock",
  .synopsis = "set TIME | advance DURATION | show",
  .summary = "Move the test clock (virtvaultd --test-clock; administrators)",
  .help = "TIME is like 2026-11-24T01:00:00Z, DURATION like 1d, 6h, 2w.\n"
  "Returns once the scheduler has started every run that became due.\n",
  .run = run_debug_clock,
};
