/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>
/* virtvault: the command-line client of virtvaultd.  Global options,
 * command dispatch and usage; the commands live in cmd-*.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <curl/curl.h>

#include "cli/cli.h"
#include "util/error.h"
#include "util/strutil.h"

static const struct cli_command *const commands[] = {
  &cli_cmd_backup,
  &cli_cmd_list,
  &cli_cmd_show,
  &cli_cmd_verify,
  &cli_cmd_restore,
  &cli_cmd_delete,
  &cli_cmd_protect,
  &cli_cmd_unprotect,
  &cli_cmd_chain_list,
  &cli_cmd_chain_show,
  &cli_cmd_job_list,
  &cli_cmd_job_show,
  &cli_cmd_job_cancel,
  &cli_cmd_target_list,
  &cli_cmd_target_add,
  &cli_cmd_target_test,
  &cli_cmd_target_remove,
  &cli_cmd_target_import,
  &cli_cmd_target_set_default,
  &cli_cmd_policy_create,
  &cli_cmd_policy_list,
  &cli_cmd_policy_show,
  &cli_cmd_policy_edit,
  &cli_cmd_policy_pause,
  &cli_cmd_policy_resume,
  &cli_cmd_policy_delete,
  &cli_cmd_policy_attach,
  &cli_cmd_policy_detach,
  &cli_cmd_policy_runs,
  &cli_cmd_instance_list,
  &cli_cmd_instance_purge,
  &cli_cmd_debug_clock,
  &cli_cmd_version,
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* These group their commands under a second word. */
static const char *const groups[] = {
  "chain", "job", "target", "policy", "instance", "debug"
};

static const char common_help[] =
  "Common options:\n"
  "  --json          print one JSON document on stdout (errors still go\n"
  "                  to stderr as one line, and stdout stays empty)\n"
  "  --socket PATH   the daemon's socket (default: $" CLI_SOCKET_ENV ",\n"
  "                  else " CLI_DEFAULT_SOCKET ")\n"
  "  -h, --help      show this help\n";

static const char exit_help[] =
  "Exit status: 0 success, 1 the operation failed, 2 usage error,\n"
  "3 cannot reach the daemon, 130 interrupted while waiting for a job.\n";

static void
print_command_list (FILE *fp, const char *group)
{
  size_t width = 0;

  for (size_t i = 0; i < N_COMMANDS; i++) {
    size_t n = strlen (commands[i]->name);
    if (width < n)
      width = n;
  }
  for (size_t i = 0; i < N_COMMANDS; i++) {
    const struct cli_command *cmd = commands[i];
    size_t glen = group ? strlen (group) : 0;

    if (group && (strncmp (cmd->name, group, glen) != 0 ||
                  cmd->name[glen] != ' '))
      continue;
    fprintf (fp, "  %-*s  %s\n", (int) width, cmd->name, cmd->summary);
  }
}

static void
print_main_help (void)
{
  printf ("Usage: virtvault [--socket PATH] [--json] COMMAND [ARGS]...\n"
          "\n"
          "Back up, list, verify and restore libvirt/QEMU virtual machines\n"
          "through the virtvaultd daemon.\n"
          "\n"
          "Commands:\n");
  print_command_list (stdout, NULL);
  printf ("\n%s"
          "  --version       print the client's version and exit\n"
          "\n"
          "Run 'virtvault COMMAND --help' for the options of one command.\n"
          "\n%s", common_help, exit_help);
}

static void
print_group_help (const char *group)
{
  printf ("Usage: virtvault %s SUBCOMMAND [ARGS]...\n\nSubcommands:\n",
          group);
  print_command_list (stdout, group);
  printf ("\nRun 'virtvault %s SUBCOMMAND --help' for one of them.\n", group);
}

static void
print_command_help (const struct cli_command *cmd)
{
  printf ("Usage: virtvault %s%s%s\n\n%s.\n",
          cmd->name, cmd->synopsis[0] ? " " : "", cmd->synopsis,
          cmd->summary);
  if (cmd->help[0])
    printf ("\n%s", cmd->help);
  printf ("\n%s\n%s", common_help, exit_help);
}

int
cli_usage_error (const struct cli_command *cmd, const char *fmt, ...)
{
  _cleanup_free_ char *msg = NULL;
  va_list ap;
  int r;

  va_start (ap, fmt);
  r = vasprintf (&msg, fmt, ap);
  va_end (ap);
  if (r < 0)
    msg = NULL;
  if (cmd)
    vv_error_code (VV_ERR_INVALID, "%s: %s; see 'virtvault %s --help'",
                   cmd->name, msg ? msg : fmt, cmd->name);
  else
    vv_error_code (VV_ERR_INVALID, "%s; see 'virtvault --help'",
                   msg ? msg : fmt);
  return CLI_EXIT_USAGE;
}

static int
set_socket (const struct cli_command *cmd, struct cli *cli, const char *path)
{
  struct sockaddr_un sa;

  if (path[0] == '\0')
    return cli_usage_error (cmd, "the socket path is empty");
  if (strlen (path) >= sizeof sa.sun_path)
    return cli_usage_error (cmd, "socket path '%s' is too long (at most %zu "
                            "bytes)", path, sizeof sa.sun_path - 1);
  cli->socket_path = path;
  return -1;
}

/* What the user typed for the option getopt just complained about. */
static const char *
bad_option_text (char **argv, char buf[3])
{
  if (optopt > 0 && optopt < 0x100) {
    buf[0] = '-';
    buf[1] = (char) optopt;
    buf[2] = '\0';
    return buf;
  }
  return argv[optind - 1];
}

int
cli_common_option (struct cli *cli, const struct cli_command *cmd,
                   int c, char **argv)
{
  char buf[3];

  switch (c) {
  case CLI_OPT_JSON:
    cli->json = true;
    return -1;
  case CLI_OPT_SOCKET:
    return set_socket (cmd, cli, optarg);
  case 'h':
    print_command_help (cmd);
    return CLI_EXIT_OK;
  case ':':
    return cli_usage_error (cmd, "option '%s' needs an argument",
                            bad_option_text (argv, buf));
  default:
    return cli_usage_error (cmd, "unknown option '%s'",
                            bad_option_text (argv, buf));
  }
}

int
cli_check_args (const struct cli_command *cmd, int argc, char **argv,
                int min, int max)
{
  int n = argc - optind;

  if (n < min) {
    /* The synopsis names the arguments: its first missing word. */
    const char *s = cmd->synopsis;
    size_t len;

    for (int i = 0; i < n && *s; i++) {
      s += strcspn (s, " ");
      s += strspn (s, " ");
    }
    len = strcspn (s, " ");
    return cli_usage_error (cmd, "missing %.*s", (int) len, s);
  }
  if (n > max)
    return cli_usage_error (cmd, "unexpected argument '%s'", argv[optind + max]);
  return -1;
}

int
cli_parse_plain (struct cli *cli, const struct cli_command *cmd,
                 int argc, char **argv, int min, int max)
{
  static const struct option longopts[] = {
    CLI_COMMON_LONGOPTS,
    { NULL, 0, NULL, 0 },
  };
  int c, r;

  while ((c = getopt_long (argc, argv, CLI_SHORTOPTS, longopts,
                           NULL)) != -1)
    if ((r = cli_common_option (cli, cmd, c, argv)) >= 0)
      return r;
  return cli_check_args (cmd, argc, argv, min, max);
}

int
cli_call_on_object (struct cli *cli, const struct cli_command *cmd,
                    int argc, char **argv, const char *method,
                    const char *collection, const char *action,
                    json_object **ret)
{
  _cleanup_free_ char *path = NULL;
  int r;

  if ((r = cli_parse_plain (cli, cmd, argc, argv, 1, 1)) >= 0)
    return r;
  if ((path = cli_object_path (collection, argv[optind], action)) == NULL)
    return CLI_EXIT_FAILED;
  if ((r = cli_request (cli, method, path, NULL, ret)) != CLI_EXIT_OK)
    return r;
  return -1;
}

int
cli_show_on_object (struct cli *cli, const struct cli_command *cmd,
                    int argc, char **argv, const char *method,
                    const char *collection, const char *action,
                    json_object **ret)
{
  int r = cli_call_on_object (cli, cmd, argc, argv, method, collection,
                              action, ret);

  if (r >= 0 || !cli->json)
    return r;
  cli_print_json (*ret);
  return CLI_EXIT_OK;
}

int
cli_get_list (struct cli *cli, const struct cli_command *cmd,
              int argc, char **argv, const char *collection,
              bool domain_filter, json_object **ret)
{
  _cleanup_free_ char *path = NULL, *esc = NULL;
  _cleanup_json_ json_object *list = NULL;
  int r;

  if ((r = cli_parse_plain (cli, cmd, argc, argv, 0,
                            domain_filter ? 1 : 0)) >= 0)
    return r;
  if (optind < argc) {
    if ((esc = cli_escape (argv[optind])) == NULL ||
        (path = vv_printf ("/v1/%s?domain=%s", collection, esc)) == NULL)
      return CLI_EXIT_FAILED;
  }
  else if ((path = vv_printf ("/v1/%s", collection)) == NULL)
    return CLI_EXIT_FAILED;
  if ((r = cli_request (cli, "GET", path, NULL, &list)) != CLI_EXIT_OK)
    return r;
  if (!json_object_is_type (list, json_type_array)) {
    vv_error ("virtvaultd answered GET %s with something else than a list",
              path);
    return CLI_EXIT_FAILED;
  }
  if (cli->json) {
    cli_print_json (list);
    return CLI_EXIT_OK;
  }
  *ret = TAKE_PTR (list);
  return -1;
}

static const struct cli_command *
find_command (const char *name)
{
  for (size_t i = 0; i < N_COMMANDS; i++)
    if (strcmp (commands[i]->name, name) == 0)
      return commands[i];
  return NULL;
}

static const char *
find_group (const char *word)
{
  for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
    if (strcmp (groups[i], word) == 0)
      return groups[i];
  return NULL;
}

/* Parses the global options and runs the command; returns the exit
 * status.  argv[optind..] are the words after the global options.
 */
static int
run (struct cli *cli, int argc, char **argv)
{
  enum { OPT_VERSION = CLI_OPT_FIRST_COMMAND_OPTION };
  static const struct option longopts[] = {
    CLI_COMMON_LONGOPTS,
    { "version", no_argument, NULL, OPT_VERSION },
    { NULL, 0, NULL, 0 },
  };
  const struct cli_command *cmd;
  const char *group;
  _cleanup_free_ char *name = NULL;
  char buf[3];
  int c, r, words;

  opterr = 0;
  /* '+': stop at the command word; its options are its own. */
  while ((c = getopt_long (argc, argv, "+" CLI_SHORTOPTS, longopts,
                           NULL)) != -1) {
    switch (c) {
    case CLI_OPT_JSON:
      cli->json = true;
      break;
    case CLI_OPT_SOCKET:
      if ((r = set_socket (NULL, cli, optarg)) >= 0)
        return r;
      break;
    case 'h':
      print_main_help ();
      return CLI_EXIT_OK;
    case OPT_VERSION:
      printf ("virtvault %s\n", PACKAGE_VERSION);
      return CLI_EXIT_OK;
    case ':':
      return cli_usage_error (NULL, "option '%s' needs an argument",
                              bad_option_text (argv, buf));
    default:
      return cli_usage_error (NULL, "unknown option '%s'",
                              bad_option_text (argv, buf));
    }
  }
  if (optind >= argc)
    return cli_usage_error (NULL, "missing command");

  if ((group = find_group (argv[optind])) != NULL) {
    if (optind + 1 >= argc) {
      vv_error_code (VV_ERR_INVALID, "%s: missing subcommand; see "
                     "'virtvault %s --help'", group, group);
      return CLI_EXIT_USAGE;
    }
    if (strcmp (argv[optind + 1], "--help") == 0 ||
        strcmp (argv[optind + 1], "-h") == 0) {
      print_group_help (group);
      return CLI_EXIT_OK;
    }
    name = vv_printf ("%s %s", group, argv[optind + 1]);
    if (name == NULL)
      return CLI_EXIT_FAILED;
    if ((cmd = find_command (name)) == NULL) {
      vv_error_code (VV_ERR_INVALID, "%s: unknown subcommand '%s'; see "
                     "'virtvault %s --help'", group, argv[optind + 1], group);
      return CLI_EXIT_USAGE;
    }
    words = 2;
  }
  else {
    if ((cmd = find_command (argv[optind])) == NULL)
      return cli_usage_error (NULL, "unknown command '%s'", argv[optind]);
    words = 1;
  }

  /* The command parses from its own name on (its argv[0]). */
  argv += optind + words - 1;
  argc -= optind + words - 1;
  optind = 0;                   /* glibc: start a fresh scan */
  return cmd->run (cli, cmd, argc, argv);
}

/* The message on one line, whatever the daemon put in it. */
static void
print_error (const char *msg)
{
  fputs ("virtvault: ", stderr);
  for (const char *p = msg; *p; p++)
    fputc (*p == '\n' || *p == '\r' ? ' ' : *p, stderr);
  fputc ('\n', stderr);
}

int
main (int argc, char **argv)
{
  struct cli cli = { .socket_path = CLI_DEFAULT_SOCKET };
  const char *env = getenv (CLI_SOCKET_ENV);
  int r;

  if (env && env[0] && (r = set_socket (NULL, &cli, env)) >= 0) {
    vv_error_prefix ("$%s: ", CLI_SOCKET_ENV);
    print_error (vv_get_error ());
    return r;
  }
  if (curl_global_init (CURL_GLOBAL_DEFAULT) != 0) {
    print_error ("cannot initialise libcurl");
    return CLI_EXIT_FAILED;
  }

  r = run (&cli, argc, argv);
  if (r != CLI_EXIT_OK) {
    const char *msg = vv_get_error ();
    print_error (msg[0] ? msg : "failed");
  }
  if (fflush (stdout) == EOF || ferror (stdout)) {
    if (r == CLI_EXIT_OK) {
      vv_error_errno (errno, "writing to stdout");
      print_error (vv_get_error ());
      r = CLI_EXIT_FAILED;
    }
  }

  cli.client = cli_client_free (cli.client);
  curl_global_cleanup ();
  return r;
}
