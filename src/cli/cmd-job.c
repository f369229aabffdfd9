/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>
/* virtvault job list | job show ID | job cancel ID */
#include <inttypes.h>
#include <string.h>

#include "cli/cli.h"
#include "util/error.h"
#include "util/strutil.h"

/* "45%", or "-" while the total is not known yet. */
static void
format_percent (json_object *job, char ret[16])
{
  int64_t done = cli_get_int (job, "bytes_done", 0);
  int64_t total = cli_get_int (job, "bytes_total", 0);
  const char *status = cli_get_str (job, "status");

  if (status && strcmp (status, "completed") == 0)
    snprintf (ret, 16, "100%%");
  else if (total > 0 && done >= 0)
    snprintf (ret, 16, "%d%%",
              (int) ((done > total ? total : done) * 100.0 / total));
  else
    snprintf (ret, 16, "-");
}

static int
run_job_list (struct cli *cli, const struct cli_command *cmd,
              int argc, char **argv)
{
  static const char *const headers[] = {
    "ID", "KIND", "STATUS", "DOMAIN", ">PROGRESS", "CREATED", NULL
  };
  _cleanup_json_ json_object *list = NULL;
  _cleanup_table_ struct cli_table *t = NULL;
  int r;

  if ((r = cli_get_list (cli, cmd, argc, argv, "jobs", false, &list)) >= 0)
    return r;
  if ((t = cli_table_new (headers)) == NULL)
    return CLI_EXIT_FAILED;
  for (size_t i = 0; i < json_object_array_length (list); i++) {
    json_object *j = json_object_array_get_idx (list, i);
    char pct[16], created[CLI_TIME_MAX];

    format_percent (j, pct);
    cli_format_time (cli_get_str (j, "created_at"), created);
    if (cli_table_add (t, (const char *const[]) {
          cli_get_str (j, "id"), cli_get_str (j, "kind"),
          cli_get_str (j, "status"), cli_get_str (j, "domain"),
          pct, created }) < 0)
      return CLI_EXIT_FAILED;
  }
  cli_table_print (t, stdout);
  return CLI_EXIT_OK;
}

static int
print_job (json_object *j)
{
  _cleanup_fields_ struct cli_fields *f = cli_fields_new ();
  _cleanup_free_ char *progress = NULL, *owner = NULL;
  char created[CLI_TIME_MAX], started[CLI_TIME_MAX], finished[CLI_TIME_MAX];
  char pct[16], done[32], total[32];
  int64_t uid = cli_get_int (j, "owner_uid", -1);
  const char *error = cli_get_str (j, "error");
  const char *notes = cli_get_str (j, "notes");

  if (f == NULL)
    return -1;
  format_percent (j, pct);
  vv_human_size ((uint64_t) cli_get_int (j, "bytes_done", 0), done);
  vv_human_size ((uint64_t) cli_get_int (j, "bytes_total", 0), total);
  if ((progress = vv_printf ("%s (%s of %s)", pct, done, total)) == NULL)
    return -1;
  if (uid >= 0 && (owner = vv_printf ("%" PRId64, uid)) == NULL)
    return -1;
  cli_format_time (cli_get_str (j, "created_at"), created);
  cli_format_time (cli_get_str (j, "started_at"), started);
  cli_format_time (cli_get_str (j, "finished_at"), finished);

  if (cli_fields_add (f, "ID", cli_get_str (j, "id")) < 0 ||
      cli_fields_add (f, "Kind", cli_get_str (j, "kind")) < 0 ||
      cli_fields_add (f, "Status", cli_get_str (j, "status")) < 0 ||
      cli_fields_add (f, "Domain", cli_get_str (j, "domain")) < 0 ||
      cli_fields_add (f, "Domain UUID", cli_get_str (j, "domain_uuid")) < 0 ||
      cli_fields_add (f, "Backup", cli_get_str (j, "backup_id")) < 0 ||
      cli_fields_add (f, "Progress", progress) < 0 ||
      cli_fields_add (f, "Created", created) < 0 ||
      cli_fields_add (f, "Started", started) < 0 ||
      cli_fields_add (f, "Finished", finished) < 0 ||
      cli_fields_add (f, "Owner uid", owner) < 0 ||
      (error && error[0] && cli_fields_add (f, "Error", error) < 0) ||
      (notes && notes[0] && cli_fields_add (f, "Notes", notes) < 0))
    return -1;
  cli_fields_print (f, stdout);
  return 0;
}

static int
run_job_show (struct cli *cli, const struct cli_command *cmd,
              int argc, char **argv)
{
  _cleanup_json_ json_object *job = NULL;
  int r;

  if ((r = cli_show_on_object (cli, cmd, argc, argv, "GET", "jobs", NULL,
                                &job)) >= 0)
    return r;
  return print_job (job) < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

static int
run_job_cancel (struct cli *cli, const struct cli_command *cmd,
                int argc, char **argv)
{
  _cleanup_json_ json_object *job = NULL;
  const char *status;
  int r;

  if ((r = cli_show_on_object (cli, cmd, argc, argv, "POST", "jobs", "cancel",
                                &job)) >= 0)
    return r;
  status = cli_get_str (job, "status");
  printf ("Cancel of job %s requested; its status is now %s\n",
          argv[optind], status ? status : "unknown");
  return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_job_list = {
  .name = "job list",
  .synopsis = "",
  .summary = "List the newest jobs (at most 100)",
  .help =
  "Prints a table: ID, KIND (backup, restore, verify), STATUS, DOMAIN,\n"
  "PROGRESS, CREATED (local time).  With --json: the array of jobs.\n",
  .run = run_job_list,
};

const struct cli_command cli_cmd_job_show = {
  .name = "job show",
  .synopsis = "ID",
  .summary = "Show one job: status, progress, error",
  .help =
  "Prints one \"key: value\" per line.  With --json: the job object.\n",
  .run = run_job_show,
};

const struct cli_command cli_cmd_job_cancel = {
  .name = "job cancel",
  .synopsis = "ID",
  .summary = "Ask the daemon to cancel a pending or running job",
  .help =
  "Returns at once; the job ends as cancelled once its work is cleaned\n"
  "up ('virtvault job show ID' tells).  With --json: the job object.\n",
  .run = run_job_cancel,
};
