/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>
/* What the CLI prints: JSON documents, aligned tables, "key: value"
 * blocks, local times, and the progress bar of a job.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/error.h"
#include "util/strutil.h"

void
cli_print_json (json_object *o)
{
  puts (json_object_to_json_string_ext (o, JSON_C_TO_STRING_PRETTY |
                                           JSON_C_TO_STRING_SPACED |
                                           JSON_C_TO_STRING_NOSLASHESCAPE));
}

const char *
cli_get_str (json_object *o, const char *key)
{
  json_object *v;

  if (o && json_object_object_get_ex (o, key, &v) &&
      json_object_is_type (v, json_type_string))
    return json_object_get_string (v);
  return NULL;
}

int64_t
cli_get_int (json_object *o, const char *key, int64_t def)
{
  json_object *v;

  if (o && json_object_object_get_ex (o, key, &v) &&
      (json_object_is_type (v, json_type_int) ||
       json_object_is_type (v, json_type_double)))
    return json_object_get_int64 (v);
  return def;
}

double
cli_get_double (json_object *o, const char *key)
{
  json_object *v;

  if (o && json_object_object_get_ex (o, key, &v) &&
      (json_object_is_type (v, json_type_int) ||
       json_object_is_type (v, json_type_double)))
    return json_object_get_double (v);
  return 0;
}

bool
cli_get_bool (json_object *o, const char *key)
{
  json_object *v;

  return o && json_object_object_get_ex (o, key, &v)
    && json_object_is_type (v, json_type_boolean)
    && json_object_get_boolean (v);
}

json_object *
cli_get_array (json_object *o, const char *key)
{
  json_object *v;

  if (o && json_object_object_get_ex (o, key, &v) &&
      json_object_is_type (v, json_type_array))
    return v;
  return NULL;
}

void
cli_format_size (json_object *o, const char *key, char ret[CLI_SIZE_MAX])
{
  int64_t v = cli_get_int (o, key, -1);

  if (v < 0)
    snprintf (ret, CLI_SIZE_MAX, "-");
  else
    vv_human_size ((uint64_t) v, ret);
}

void
cli_format_time (const char *iso, char ret[CLI_TIME_MAX])
{
  struct tm tm = { 0 }, local;
  const char *end;
  time_t t;

  if (iso == NULL) {
    snprintf (ret, CLI_TIME_MAX, "-");
    return;
  }
  end = strptime (iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == NULL || *end != '\0' || (t = timegm (&tm)) == (time_t) -1 ||
      localtime_r (&t, &local) == NULL ||
      strftime (ret, CLI_TIME_MAX, "%Y-%m-%d %H:%M:%S", &local) == 0)
    snprintf (ret, CLI_TIME_MAX, "%s", iso);
}

/* Columns are measured in characters, not bytes, so that a UTF-8 domain
 * name does not push its row out of line.
 */
static size_t
text_width (const char *s)
{
  size_t n = 0;

  for (; *s; s++)
    if (((unsigned char) *s & 0xC0) != 0x80)
      n++;
  return n;
}

static void
pad (FILE *fp, size_t n)
{
  while (n-- > 0)
    fputc (' ', fp);
}

struct cli_table {
  size_t ncols, nrows, cap;
  const char *const *headers;
  char **cells;                 /* nrows * ncols */
};

struct cli_table *
cli_table_new (const char *const *headers)
{
  struct cli_table *t = calloc (1, sizeof *t);

  if (t == NULL) {
    vv_error_errno (ENOMEM, "creating a table");
    return NULL;
  }
  t->headers = headers;
  while (headers[t->ncols])
    t->ncols++;
  return t;
}

int
cli_table_add (struct cli_table *t, const char *const *cells)
{
  if (t->nrows == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 16;
    char **p = reallocarray (t->cells, cap * t->ncols, sizeof *p);

    if (p == NULL) {
      vv_error_errno (ENOMEM, "adding a table row");
      return -1;
    }
    t->cells = p;
    t->cap = cap;
  }
  for (size_t i = 0; i < t->ncols; i++) {
    char *s = vv_strdup (cells[i] ? cells[i] : "-");

    if (s == NULL) {
      for (size_t j = 0; j < i; j++)
        free (t->cells[t->nrows * t->ncols + j]);
      return -1;
    }
    t->cells[t->nrows * t->ncols + i] = s;
  }
  t->nrows++;
  return 0;
}

static const char *
header_text (const char *h)
{
  return h[0] == '>' ? h + 1 : h;
}

static void
print_row (const struct cli_table *t, FILE *fp, const size_t *widths,
           const char *const *row)
{
  for (size_t i = 0; i < t->ncols; i++) {
    bool right = t->headers[i][0] == '>';
    bool last = i + 1 == t->ncols;
    size_t w = text_width (row[i]);

    if (i > 0)
      fputs ("  ", fp);
    if (right)
      pad (fp, widths[i] - w);
    fputs (row[i], fp);
    if (!right && !last)
      pad (fp, widths[i] - w);
  }
  fputc ('\n', fp);
}

void
cli_table_print (struct cli_table *t, FILE *fp)
{
  _cleanup_free_ size_t *widths = calloc (t->ncols, sizeof *widths);
  _cleanup_free_ const char **hdr = calloc (t->ncols, sizeof *hdr);

  if (widths == NULL || hdr == NULL)
    return;
  for (size_t i = 0; i < t->ncols; i++) {
    hdr[i] = header_text (t->headers[i]);
    widths[i] = text_width (hdr[i]);
    for (size_t r = 0; r < t->nrows; r++) {
      size_t w = text_width (t->cells[r * t->ncols + i]);
      if (widths[i] < w)
        widths[i] = w;
    }
  }
  print_row (t, fp, widths, hdr);
  for (size_t r = 0; r < t->nrows; r++)
    print_row (t, fp, widths, (const char *const *) &t->cells[r * t->ncols]);
}

struct cli_table *
cli_table_free (struct cli_table *t)
{
  if (t) {
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
      free (t->cells[i]);
    free (t->cells);
    free (t);
  }
  return NULL;
}

/* A two-column table without a header, printed as "key: value". */
struct cli_fields {
  size_t n, cap;
  char **kv;                    /* key, value, key, value... */
};

struct cli_fields *
cli_fields_new (void)
{
  struct cli_fields *f = calloc (1, sizeof *f);

  if (f == NULL)
    vv_error_errno (ENOMEM, "creating a field list");
  return f;
}

int
cli_fields_add (struct cli_fields *f, const char *key, const char *value)
{
  char *k, *v;

  if (f->n == f->cap) {
    size_t cap = f->cap ? 2 * f->cap : 16;
    char **p = reallocarray (f->kv, 2 * cap, sizeof *p);

    if (p == NULL) {
      vv_error_errno (ENOMEM, "adding a field");
      return -1;
    }
    f->kv = p;
    f->cap = cap;
  }
  k = vv_strdup (key);
  v = vv_strdup (value ? value : "-");
  if (k == NULL || v == NULL) {
    free (k);
    free (v);
    return -1;
  }
  f->kv[2 * f->n] = k;
  f->kv[2 * f->n + 1] = v;
  f->n++;
  return 0;
}

void
cli_fields_print (struct cli_fields *f, FILE *fp)
{
  size_t width = 0;

  for (size_t i = 0; i < f->n; i++) {
    size_t w = text_width (f->kv[2 * i]);
    if (width < w)
      width = w;
  }
  for (size_t i = 0; i < f->n; i++) {
    fprintf (fp, "%s:", f->kv[2 * i]);
    pad (fp, width - text_width (f->kv[2 * i]) + 1);
    fprintf (fp, "%s\n", f->kv[2 * i + 1]);
  }
}

struct cli_fields *
cli_fields_free (struct cli_fields *f)
{
  if (f) {
    for (size_t i = 0; i < 2 * f->n; i++)
      free (f->kv[i]);
    free (f->kv);
    free (f);
  }
  return NULL;
}

/* The rate is measured over the last few seconds of samples, so that
 * it follows changes of speed without jumping at every poll.
 */
#define RATE_SAMPLES 16

struct cli_progress {
  struct {
    double t;
    uint64_t done;
  } samples[RATE_SAMPLES];
  size_t nsamples, next;
  bool drawn;
};

static double
now_seconds (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct cli_progress *
cli_progress_new (const struct cli *cli)
{
  struct cli_progress *p;

  if (cli->json || !isatty (STDOUT_FILENO) || !isatty (STDERR_FILENO))
    return NULL;
  /* Without memory there is simply no bar. */
  p = calloc (1, sizeof *p);
  return p;
}

static int
terminal_columns (void)
{
  struct winsize ws;

  if (ioctl (STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  return 80;
}

void
cli_progress_update (struct cli_progress *p, uint64_t done, uint64_t total)
{
  char line[512], sdone[32], stotal[32], srate[48] = "";
  double t = now_seconds ();
  size_t oldest;
  unsigned pct;
  int barw, filled, n;

  if (p == NULL)
    return;
  p->samples[p->next].t = t;
  p->samples[p->next].done = done;
  p->next = (p->next + 1) % RATE_SAMPLES;
  if (p->nsamples < RATE_SAMPLES)
    p->nsamples++;
  oldest = (p->next + RATE_SAMPLES - p->nsamples) % RATE_SAMPLES;
  if (t - p->samples[oldest].t >= 0.5 && done >= p->samples[oldest].done) {
    char r[32];

    vv_human_size ((uint64_t) ((done - p->samples[oldest].done) /
                               (t - p->samples[oldest].t)), r);
    snprintf (srate, sizeof srate, "  %s/s", r);
  }

  if (total > 0 && done > total)
    total = done;
  pct = total ? (unsigned) (done * 100.0 / total) : 0;
  barw = terminal_columns () - 50;
  if (barw > 30)
    barw = 30;
  if (barw < 10)
    barw = 10;
  filled = total ? (int) (done * (double) barw / total) : 0;

  vv_human_size (done, sdone);
  vv_human_size (total, stotal);
  n = snprintf (line, sizeof line, "\r[");
  for (int i = 0; i < barw; i++)
    line[n++] = i < filled ? '#' : ' ';
  snprintf (line + n, sizeof line - n, "] %3u%%  %s / %s%s\033[K",
            pct, sdone, total ? stotal : "?", srate);
  fputs (line, stderr);
  fflush (stderr);
  p->drawn = true;
}

void
cli_progress_clear (struct cli_progress *p)
{
  if (p && p->drawn) {
    fputs ("\r\033[K", stderr);
    fflush (stderr);
    p->drawn = false;
  }
}

struct cli_progress *
cli_progress_free (struct cli_progress *p)
{
  cli_progress_clear (p);
  free (p);
  return NULL;
}
