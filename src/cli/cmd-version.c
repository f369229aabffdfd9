/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>
/* virtvault version: the client's and the daemon's. */
#include "cli/cli.h"
#include "util/error.h"

static int
run_version (struct cli *cli, const struct cli_command *cmd,
             int argc, char **argv)
{
  _cleanup_json_ json_object *daemon = NULL, *out = NULL;
  const char *dv;
  int r;

  if ((r = cli_parse_plain (cli, cmd, argc, argv, 0, 0)) >= 0)
    return r;
  /* The client's version is worth showing even without a daemon. */
  if (!cli->json) {
    printf ("virtvault %s\n", PACKAGE_VERSION);
    fflush (stdout);
  }
  if ((r = cli_request (cli, "GET", "/v1/version", NULL,
                        &daemon)) != CLI_EXIT_OK)
    return r;
  dv = cli_get_str (daemon, "version");
  if (cli->json) {
    if ((out = json_object_new_object ()) == NULL)
      return CLI_EXIT_FAILED;
    json_object_object_add (out, "client", json_object_new_string (PACKAGE_VERSION));
    json_object_object_add (out, "daemon", json_object_get (daemon));
    cli_print_json (out);
  }
  else
    printf ("virtvaultd %s (API %d)\n", dv ? dv : "unknown",
            (int) cli_get_int (daemon, "api", 0));
  return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_version = {
  .name = "version",
  .synopsis = "",
  .summary = "Print the versions of the client and of the daemon",
  .help =
  "Prints \"virtvault VERSION\" then \"virtvaultd VERSION (API N)\"; the\n"
  "first line comes even when the daemon cannot be reached.  With --json:\n"
  "{\"client\": \"VERSION\", \"daemon\": {\"version\": ..., \"api\": N}}.\n",
  .run = run_version,
};
