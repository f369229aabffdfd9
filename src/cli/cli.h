/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The virtvault command-line client: declarations shared by its files.
 *
 * The CLI talks to virtvaultd over HTTP/JSON on a UNIX socket
 * (docs/api.md) and uses only src/util.  Every command returns an exit
 * status; on failure the message is left in the per-thread error
 * (util/error.h) and main prints it once as "virtvault: <message>".
 */
#ifndef VV_CLI_H
#define VV_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util/json.h"

/* Exit statuses (docs/cli.md). */
enum {
  CLI_EXIT_OK = 0,
  CLI_EXIT_FAILED = 1,          /* the daemon refused, or the job failed */
  CLI_EXIT_USAGE = 2,
  CLI_EXIT_UNREACHABLE = 3,     /* no daemon on the socket */
  CLI_EXIT_INTERRUPTED = 130,   /* Ctrl-C while waiting for a job */
};

#define CLI_DEFAULT_SOCKET "/run/virtvault/virtvaultd.sock"
#define CLI_SOCKET_ENV "VIRTVAULT_SOCKET"

struct cli_client;

/* The parsed global options, plus the connection made from them. */
struct cli {
  const char *socket_path;
  bool json;
  struct cli_client *client;    /* created on first request */
};

struct cli_command {
  const char *name;             /* "backup", "job list", ... */
  const char *synopsis;         /* arguments after the name */
  const char *summary;          /* one line for the command list */
  const char *help;             /* the rest of --help: options etc. */
  int (*run) (struct cli *cli, const struct cli_command *cmd,
              int argc, char **argv);
};

/* virtvault.c: option parsing shared by every command. */

/* Long options every command accepts; append to a command's table. */
enum {
  CLI_OPT_JSON = 0x100,
  CLI_OPT_SOCKET,
  CLI_OPT_FIRST_COMMAND_OPTION, /* commands number theirs from here */
};
#define CLI_COMMON_LONGOPTS                                     \
  { "json", no_argument, NULL, CLI_OPT_JSON },                  \
  { "socket", required_argument, NULL, CLI_OPT_SOCKET },        \
  { "help", no_argument, NULL, 'h' }
/* getopt_long option string: ':' first so a missing argument is told
 * apart from an unknown option.
 */
#define CLI_SHORTOPTS ":h"

/* Handles an option getopt_long returned that the command does not know
 * itself (common options and errors).  Returns -1 when parsing goes on,
 * else the exit status the command must return at once (0 after --help,
 * CLI_EXIT_USAGE after an error).
 */
int cli_common_option (struct cli *cli, const struct cli_command *cmd,
                       int c, char **argv);
/* Checks that exactly [min, max] positional arguments remain after
 * option parsing; reports a usage error naming what is missing/extra.
 */
int cli_check_args (const struct cli_command *cmd, int argc, char **argv,
                    int min, int max);
/* Option parsing for a command with no options of its own: the common
 * ones, then [min, max] positional arguments.  Returns -1 to go on, else
 * the exit status to return.
 */
int cli_parse_plain (struct cli *cli, const struct cli_command *cmd,
                     int argc, char **argv, int min, int max);
/* The shape of every "COMMAND ID" without options of its own: parses the
 * common options and the one ID, sends method to
 * /v1/<collection>/<ID>[/<action>] and returns -1 with the answer in
 * *ret, else the exit status to return.
 */
int cli_call_on_object (struct cli *cli, const struct cli_command *cmd,
                        int argc, char **argv, const char *method,
                        const char *collection, const char *action,
                        json_object **ret);
/* The same, for commands whose --json output is the answer as it is:
 * with --json it prints the answer and returns CLI_EXIT_OK, so -1 (the
 * answer in *ret) means "print it for people".
 */
int cli_show_on_object (struct cli *cli, const struct cli_command *cmd,
                        int argc, char **argv, const char *method,
                        const char *collection, const char *action,
                        json_object **ret);
/* The shape of every list command: parses the common options and, with
 * domain_filter, an optional DOMAIN; GETs /v1/<collection>[?domain=...]
 * and requires a JSON array.  With --json it prints the array and
 * returns CLI_EXIT_OK, so -1 (the array in *ret) means "print it for
 * people"; else the exit status to return.
 */
int cli_get_list (struct cli *cli, const struct cli_command *cmd,
                  int argc, char **argv, const char *collection,
                  bool domain_filter, json_object **ret);
/* Records a usage error for cmd ("backup: ...; see 'virtvault backup
 * --help'") and returns CLI_EXIT_USAGE.
 */
int cli_usage_error (const struct cli_command *cmd, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

/* client.c: one request to the daemon. */

/* Escapes s for use as one path segment or query value. */
char *cli_escape (const char *s);
/* "/v1/<collection>/<id escaped>[/<action>]". */
char *cli_object_path (const char *collection, const char *id,
                       const char *action);
/* method is GET, POST or DELETE; path starts with "/v1/" (segments from
 * the user escaped with cli_escape).  body may be NULL (POST then sends
 * an empty body).  On a 2xx answer returns 0 and, if ret is not NULL,
 * the parsed answer.  Otherwise returns CLI_EXIT_FAILED (the daemon's
 * error message) or CLI_EXIT_UNREACHABLE, with the error set.
 */
int cli_request (struct cli *cli, const char *method, const char *path,
                 json_object *body, json_object **ret);
struct cli_client *cli_client_free (struct cli_client *c);

/* output.c: tables, times, sizes, JSON, the progress bar. */

/* Pretty-prints one JSON document and a newline on stdout. */
void cli_print_json (json_object *o);

/* String field of an object, or NULL when absent, null or not a string. */
const char *cli_get_str (json_object *o, const char *key);
/* Integer field, or def when absent or not a number. */
int64_t cli_get_int (json_object *o, const char *key, int64_t def);
/* A number field, 0 if absent. */
double cli_get_double (json_object *o, const char *key);
/* Boolean field, false when absent or not a boolean. */
bool cli_get_bool (json_object *o, const char *key);
/* Array field, or NULL. */
json_object *cli_get_array (json_object *o, const char *key);

/* "2026-11-23T15:52:35Z" -> local "2026-11-23 16:52:35"; NULL -> "-";
 * anything unparseable is copied as it is.
 */
#define CLI_TIME_MAX 64
void cli_format_time (const char *iso, char ret[CLI_TIME_MAX]);
/* Integer field key of o as a human size ("1.5 GiB"); "-" when absent or
 * negative.
 */
#define CLI_SIZE_MAX 32
void cli_format_size (json_object *o, const char *key,
                      char ret[CLI_SIZE_MAX]);

struct cli_table;
/* A table whose columns are named by the NULL-terminated headers.  A
 * header beginning with '>' is right-aligned (the '>' is not printed).
 */
struct cli_table *cli_table_new (const char *const *headers);
/* Adds a row: one string per column (NULL prints as "-"). */
int cli_table_add (struct cli_table *t, const char *const *cells);
void cli_table_print (struct cli_table *t, FILE *fp);
struct cli_table *cli_table_free (struct cli_table *t);

/* "key: value" lines with the values aligned. */
struct cli_fields;
struct cli_fields *cli_fields_new (void);
int cli_fields_add (struct cli_fields *f, const char *key, const char *value);
void cli_fields_print (struct cli_fields *f, FILE *fp);
struct cli_fields *cli_fields_free (struct cli_fields *f);

/* A one-line progress bar on stderr, redrawn in place. */
struct cli_progress;
/* NULL (not an error) unless stdout and stderr are terminals and the
 * output is not JSON: then there is nothing to draw.
 */
struct cli_progress *cli_progress_new (const struct cli *cli);
void cli_progress_update (struct cli_progress *p, uint64_t done,
                          uint64_t total);
/* Erases the bar so that a message can follow. */
void cli_progress_clear (struct cli_progress *p);
/* Erases the bar and frees it. */
struct cli_progress *cli_progress_free (struct cli_progress *p);

static inline void
cli_cleanup_table (struct cli_table **t)
{
  cli_table_free (*t);
}
#define _cleanup_table_ __attribute__ ((cleanup (cli_cleanup_table)))
static inline void
cli_cleanup_fields (struct cli_fields **f)
{
  cli_fields_free (*f);
}
#define _cleanup_fields_ __attribute__ ((cleanup (cli_cleanup_fields)))
static inline void
cli_cleanup_progress (struct cli_progress **p)
{
  cli_progress_free (*p);
}
#define _cleanup_progress_ __attribute__ ((cleanup (cli_cleanup_progress)))

/* wait.c: following a job to its end. */

/* Polls GET /v1/jobs/{id} until the job is completed, failed or
 * cancelled, drawing the progress bar on a terminal.  Ctrl-C (SIGINT) or
 * SIGTERM asks the daemon to cancel the job and keeps waiting for it to
 * end; a second one stops waiting.  Returns 0 with the final job when it
 * completed; otherwise an exit status with the error set (CLI_EXIT_FAILED
 * for a failed or cancelled job, CLI_EXIT_INTERRUPTED after a signal).
 * "what" names the operation in messages ("backup bk-...").
 * The caller must have blocked SIGINT and SIGTERM (cli_block_signals)
 * before starting the job, so that no Ctrl-C is lost in between.
 */
int cli_wait_job (struct cli *cli, const char *job_id, const char *what,
                  json_object **ret_job);
void cli_block_signals (void);

/* The commands (cmd-*.c). */
extern const struct cli_command cli_cmd_backup;
extern const struct cli_command cli_cmd_list;
extern const struct cli_command cli_cmd_show;
extern const struct cli_command cli_cmd_verify;
extern const struct cli_command cli_cmd_restore;
extern const struct cli_command cli_cmd_delete;
extern const struct cli_command cli_cmd_chain_list;
extern const struct cli_command cli_cmd_chain_show;
extern const struct cli_command cli_cmd_job_list;
extern const struct cli_command cli_cmd_job_show;
extern const struct cli_command cli_cmd_job_cancel;
extern const struct cli_command cli_cmd_target_list;
extern const struct cli_command cli_cmd_target_add;
extern const struct cli_command cli_cmd_target_test;
extern const struct cli_command cli_cmd_target_remove;
extern const struct cli_command cli_cmd_target_import;
extern const struct cli_command cli_cmd_target_set_default;
extern const struct cli_command cli_cmd_version;
extern const struct cli_command cli_cmd_policy_create;
extern const struct cli_command cli_cmd_policy_edit;
extern const struct cli_command cli_cmd_policy_list;
extern const struct cli_command cli_cmd_policy_show;
extern const struct cli_command cli_cmd_policy_pause;
extern const struct cli_command cli_cmd_policy_resume;
extern const struct cli_command cli_cmd_policy_delete;
extern const struct cli_command cli_cmd_policy_attach;
extern const struct cli_command cli_cmd_policy_detach;
extern const struct cli_command cli_cmd_policy_runs;
extern const struct cli_command cli_cmd_protect;
extern const struct cli_command cli_cmd_unprotect;
extern const struct cli_command cli_cmd_instance_list;
extern const struct cli_command cli_cmd_instance_purge;
extern const struct cli_command cli_cmd_debug_clock;

#endif
