/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>
/* HTTP/JSON requests to virtvaultd over its UNIX socket, with libcurl.
 * One easy handle serves every request of a run, so polling a job reuses
 * the connection.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli/cli.h"
#include "util/error.h"
#include "util/strutil.h"

/* Lists of jobs and backups are far smaller; a bigger answer is a bug. */
#define CLI_MAX_RESPONSE (64 * 1024 * 1024)
/* Every request is short (long work runs as a job), so a daemon that
 * takes longer than this is stuck.
 */
#define CLI_TIMEOUT_MS 60000L
#define CLI_CONNECT_TIMEOUT_MS 10000L

struct cli_client {
  CURL *curl;
  char *socket_path;
  struct curl_slist *headers;
  char errbuf[CURL_ERROR_SIZE];
};

struct response {
  char *data;
  size_t len, cap;
  bool too_big, nomem;
};

struct cli_client *
cli_client_free (struct cli_client *c)
{
  if (c) {
    if (c->curl)
      curl_easy_cleanup (c->curl);
    curl_slist_free_all (c->headers);
    free (c->socket_path);
    free (c);
  }
  return NULL;
}

static struct cli_client *
client_new (const char *socket_path)
{
  struct cli_client *c = calloc (1, sizeof *c);
  struct curl_slist *h;

  if (c == NULL) {
    vv_error_errno (ENOMEM, "creating the client");
    return NULL;
  }
  c->socket_path = vv_strdup (socket_path);
  c->curl = curl_easy_init ();
  h = curl_slist_append (NULL, "Content-Type: application/json");
  if (h)
    c->headers = h;
  /* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
  if (h && (h = curl_slist_append (c->headers, "Expect:")) != NULL)
    c->headers = h;
  if (c->socket_path == NULL || c->curl == NULL || h == NULL) {
    vv_error ("cannot initialise libcurl");
    return cli_client_free (c);
  }

  if (curl_easy_setopt (c->curl, CURLOPT_UNIX_SOCKET_PATH,
                        c->socket_path) != CURLE_OK ||
      curl_easy_setopt (c->curl, CURLOPT_HTTPHEADER, c->headers) != CURLE_OK ||
      curl_easy_setopt (c->curl, CURLOPT_ERRORBUFFER, c->errbuf) != CURLE_OK ||
      curl_easy_setopt (c->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
      curl_easy_setopt (c->curl, CURLOPT_TIMEOUT_MS,
                        CLI_TIMEOUT_MS) != CURLE_OK ||
      curl_easy_setopt (c->curl, CURLOPT_CONNECTTIMEOUT_MS,
                        CLI_CONNECT_TIMEOUT_MS) != CURLE_OK ||
      curl_easy_setopt (c->curl, CURLOPT_USERAGENT,
                        "virtvault/" PACKAGE_VERSION) != CURLE_OK) {
    vv_error ("cannot configure libcurl for the socket '%s'", socket_path);
    return cli_client_free (c);
  }
  return c;
}

static size_t
on_data (char *ptr, size_t size, size_t nmemb, void *opaque)
{
  struct response *r = opaque;
  size_t n = size * nmemb;

  if (n > CLI_MAX_RESPONSE - r->len) {
    r->too_big = true;
    return 0;
  }
  if (r->len + n + 1 > r->cap) {
    size_t cap = r->cap ? r->cap : 16384;
    char *p;

    while (cap < r->len + n + 1)
      cap *= 2;
    if ((p = realloc (r->data, cap)) == NULL) {
      r->nomem = true;
      return 0;
    }
    r->data = p;
    r->cap = cap;
  }
  memcpy (r->data + r->len, ptr, n);
  r->len += n;
  r->data[r->len] = '\0';
  return n;
}

char *
cli_escape (const char *s)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t len = strlen (s);
  char *out = malloc (3 * len + 1), *p = out;

  if (out == NULL) {
    vv_error_errno (ENOMEM, "escaping '%s'", s);
    return NULL;
  }
  for (; *s; s++) {
    unsigned char ch = *s;

    if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
        (ch >= '0' && ch <= '9') || strchr ("-._~", ch))
      *p++ = ch;
    else {
      *p++ = '%';
      *p++ = hex[ch >> 4];
      *p++ = hex[ch & 15];
    }
  }
  *p = '\0';
  return out;
}

char *
cli_object_path (const char *collection, const char *id, const char *action)
{
  _cleanup_free_ char *esc = cli_escape (id);

  if (esc == NULL)
    return NULL;
  return vv_printf ("/v1/%s/%s%s%s", collection, esc,
                    action ? "/" : "", action ? action : "");
}

static int
transport_error (struct cli_client *c, CURLcode res,
                 const char *method, const char *path)
{
  long os_errno = 0;

  curl_easy_getinfo (c->curl, CURLINFO_OS_ERRNO, &os_errno);
  if (res == CURLE_COULDNT_CONNECT) {
    const char *hint = os_errno == EACCES || os_errno == EPERM
      ? "check the permissions of the socket, or pass --socket"
      : "is the daemon running? (start it with 'virtvaultd' or pass "
        "--socket)";

    vv_error_code (VV_ERR_UNAVAILABLE, "cannot reach virtvaultd at %s: %s; %s",
                   c->socket_path,
                   os_errno ? strerror ((int) os_errno) : c->errbuf, hint);
  }
  else if (res == CURLE_OPERATION_TIMEDOUT)
    vv_error_code (VV_ERR_UNAVAILABLE,
                   "virtvaultd at %s did not answer %s %s within %ld s; "
                   "check the daemon's log", c->socket_path, method, path,
                   CLI_TIMEOUT_MS / 1000);
  else
    vv_error_code (VV_ERR_UNAVAILABLE, "talking to virtvaultd at %s (%s %s): "
                   "%s", c->socket_path, method, path,
                   c->errbuf[0] ? c->errbuf : curl_easy_strerror (res));
  return CLI_EXIT_UNREACHABLE;
}

/* The daemon's {"error":{"code","message"}} as our error. */
static int
daemon_error (long status, json_object *answer, const struct response *r,
              const char *method, const char *path)
{
  json_object *err = NULL, *code = NULL, *msg = NULL;

  if (answer && json_object_object_get_ex (answer, "error", &err) &&
      json_object_object_get_ex (err, "message", &msg) &&
      json_object_is_type (msg, json_type_string)) {
    json_object_object_get_ex (err, "code", &code);
    vv_error_code (vv_error_code_from_name (json_object_get_string (code)),
                   "%s", json_object_get_string (msg));
  }
  else
    vv_error ("virtvaultd answered HTTP %ld to %s %s: %.200s",
              status, method, path, r->len ? r->data : "(empty body)");
  return CLI_EXIT_FAILED;
}

int
cli_request (struct cli *cli, const char *method, const char *path,
             json_object *body, json_object **ret)
{
  struct cli_client *c;
  _cleanup_free_ char *url = NULL;
  _cleanup_json_ json_object *answer = NULL;
  struct response r = { 0 };
  const char *text = "";
  size_t text_len = 0;
  CURLcode res;
  long status = 0;
  int rv;

  if (cli->client == NULL &&
      (cli->client = client_new (cli->socket_path)) == NULL)
    return CLI_EXIT_FAILED;
  c = cli->client;

  if ((url = vv_printf ("http://localhost%s", path)) == NULL)
    return CLI_EXIT_FAILED;
  if (body) {
    text = json_object_to_json_string_ext (body, JSON_C_TO_STRING_PLAIN |
                                           JSON_C_TO_STRING_NOSLASHESCAPE);
    text_len = strlen (text);
  }

  c->errbuf[0] = '\0';
  curl_easy_setopt (c->curl, CURLOPT_URL, url);
  curl_easy_setopt (c->curl, CURLOPT_CUSTOMREQUEST, NULL);
  if (strcmp (method, "POST") == 0) {
    curl_easy_setopt (c->curl, CURLOPT_POST, 1L);
    curl_easy_setopt (c->curl, CURLOPT_POSTFIELDSIZE, (long) text_len);
    curl_easy_setopt (c->curl, CURLOPT_POSTFIELDS, text);
  }
  else {
    curl_easy_setopt (c->curl, CURLOPT_HTTPGET, 1L);
    if (strcmp (method, "GET") != 0)
      curl_easy_setopt (c->curl, CURLOPT_CUSTOMREQUEST, method);
  }
  curl_easy_setopt (c->curl, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt (c->curl, CURLOPT_WRITEDATA, &r);

  res = curl_easy_perform (c->curl);
  /* The POST body belongs to the caller's object: forget it. */
  curl_easy_setopt (c->curl, CURLOPT_POSTFIELDS, NULL);

  if (res != CURLE_OK) {
    if (r.too_big)
      vv_error ("the answer of virtvaultd to %s %s is larger than %d MiB",
                method, path, CLI_MAX_RESPONSE / (1024 * 1024));
    else if (r.nomem)
      vv_error_errno (ENOMEM, "reading the answer to %s %s", method, path);
    rv = r.too_big || r.nomem ? CLI_EXIT_FAILED
                              : transport_error (c, res, method, path);
    free (r.data);
    return rv;
  }

  curl_easy_getinfo (c->curl, CURLINFO_RESPONSE_CODE, &status);
  if (r.len > 0) {
    answer = vv_json_parse ("the answer of virtvaultd", r.data, r.len);
    if (answer == NULL && status >= 200 && status < 300) {
      vv_error_prefix ("%s %s: ", method, path);
      free (r.data);
      return CLI_EXIT_FAILED;
    }
  }
  if (status < 200 || status >= 300) {
    rv = daemon_error (status, answer, &r, method, path);
    free (r.data);
    return rv;
  }
  free (r.data);
  if (answer == NULL && (answer = json_object_new_object ()) == NULL) {
    vv_error_errno (ENOMEM, "reading the answer to %s %s", method, path);
    return CLI_EXIT_FAILED;
  }
  if (ret)
    *ret = TAKE_PTR (answer);
  return CLI_EXIT_OK;
}
