/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Retention decisions: which backups of one instance to delete, and why.
 * The rules are in docs/retention.md; this file implements them in the
 * order described there.
 */
#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/retention.h"
#include "util/cleanup.h"
#include "util/error.h"

#define NONE SIZE_MAX

/* ------------------------------------------------------------------ */
/* Buckets of keep rules (UTC)                                          */

static int64_t
floor_div (int64_t a, int64_t b)
{
  int64_t q = a / b;

  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t
bucket_of (const struct vv_keep_rule *k, time_t t)
{
  /* 1970-01-05 was the first Monday after the epoch. */
  static const int64_t monday = 4 * 86400;
  struct tm tm;

  switch (k->unit) {
  case VV_KEEP_HOUR:
    return floor_div (t, (int64_t) 3600 * k->every);
  case VV_KEEP_DAY:
    return floor_div (t, (int64_t) 86400 * k->every);
  case VV_KEEP_WEEK:
    return floor_div ((int64_t) t - monday, (int64_t) 7 * 86400 * k->every);
  case VV_KEEP_MONTH:
  case VV_KEEP_YEAR:
    break;
  }
  if (gmtime_r (&t, &tm) == NULL)       /* beyond year 2^31: one bucket */
    return INT64_MAX;
  if (k->unit == VV_KEEP_MONTH)
    return floor_div ((int64_t) tm.tm_year * 12 + tm.tm_mon - 70 * 12,
                      k->every);
  return floor_div ((int64_t) tm.tm_year - 70, k->every);
}

/* ------------------------------------------------------------------ */
/* The decision                                                        */

enum why {
  WHY_NONE = 0,
  WHY_CHAIN,                    /* beyond the newest N chains */
  WHY_MAX_AGE,
  WHY_MAX_BACKUPS,
  WHY_MANUAL,
};

struct node {
  size_t parent;                /* index or NONE */
  size_t chain;                 /* index into chains (completed only) */
  size_t depth;                 /* 0 for a root */
  size_t root;                  /* the oldest ancestor listed (or self) */
  size_t wanted_below;          /* wanted backups among self+descendants */
  bool completed, in_flight, managed, wanted, kept_by_rule;
  enum why why;
};

struct chain {
  const char *id;
  time_t start;                 /* its oldest completed backup */
  uint64_t start_seq;           /* and that backup's seq */
  size_t first, end;            /* range in the by-chain order */
  bool automatic;               /* holds a backup this policy manages */
  size_t rank;                  /* 0 = newest automatic chain */
};

struct ctx {
  const struct vv_ret_backup *b;
  const struct node *nodes;
  const struct chain *chains;
};

static int
cmp_id (const void *pa, const void *pb, void *opaque)
{
  const struct ctx *c = opaque;

  return strcmp (c->b[*(const size_t *) pa].id, c->b[*(const size_t *) pb].id);
}

static int
cmp_chain_id (const void *pa, const void *pb, void *opaque)
{
  const struct ctx *c = opaque;
  size_t a = *(const size_t *) pa, b = *(const size_t *) pb;
  int r = strcmp (c->b[a].chain_id, c->b[b].chain_id);

  return r ? r : (a > b) - (a < b);
}

/* Newest first.  At the same second the creation order (seq) decides, a
 * child is newer than its parent, and ids break the remaining ties, so the result never depends on the
 * input order.
 */
static int
cmp_newest (const void *pa, const void *pb, void *opaque)
{
  const struct ctx *c = opaque;
  size_t ia = *(const size_t *) pa, ib = *(const size_t *) pb;
  const struct vv_ret_backup *a = &c->b[ia], *b = &c->b[ib];

  if (a->created_at != b->created_at)
    return a->created_at > b->created_at ? -1 : 1;
  if (a->seq != b->seq)
    return a->seq > b->seq ? -1 : 1;
  if (c->nodes[ia].depth != c->nodes[ib].depth)
    return c->nodes[ia].depth > c->nodes[ib].depth ? -1 : 1;
  return -strcmp (a->id, b->id);
}

static int
cmp_chain_newest (const void *pa, const void *pb, void *opaque)
{
  const struct ctx *c = opaque;
  const struct chain *a = &c->chains[*(const size_t *) pa];
  const struct chain *b = &c->chains[*(const size_t *) pb];

  if (a->start != b->start)
    return a->start > b->start ? -1 : 1;
  if (a->start_seq != b->start_seq)
    return a->start_seq > b->start_seq ? -1 : 1;
  return -strcmp (a->id, b->id);
}

/* One tree (a full and what is based on it) after the other, oldest
 * first; in a tree children before parents: deeper first, then newest.
 */
static int
cmp_delete_order (const void *pa, const void *pb, void *opaque)
{
  const struct ctx *c = opaque;
  size_t a = *(const size_t *) pa, b = *(const size_t *) pb;
  size_t ra = c->nodes[a].root, rb = c->nodes[b].root;

  if (ra != rb)
    return -cmp_newest (&ra, &rb, opaque);
  if (c->nodes[a].depth != c->nodes[b].depth)
    return c->nodes[a].depth > c->nodes[b].depth ? -1 : 1;
  return cmp_newest (pa, pb, opaque);
}

static size_t
find_id (const struct ctx *c, const size_t *by_id, size_t n, const char *id)
{
  size_t lo = 0, hi = n;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int r = strcmp (c->b[by_id[mid]].id, id);

    if (r == 0)
      return by_id[mid];
    if (r < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NONE;
}

static bool
ignored (const struct vv_ret_backup *b)
{
  return b->status == VV_RET_FAILED || b->status == VV_RET_CANCELLED;
}

/* Validates the input and links parents; fills nodes[].parent, depth,
 * completed, in_flight, managed.
 */
static int
link_backups (struct ctx *c, struct node *nodes, size_t *by_id, size_t n,
              const struct vv_retention_rules *r)
{
  const struct vv_ret_backup *b = c->b;

  for (size_t i = 0; i < n; i++) {
    if (b[i].id == NULL || b[i].id[0] == '\0') {
      vv_error_code (VV_ERR_INVALID, "retention: backup #%zu has no id", i);
      return -1;
    }
    if (b[i].status > VV_RET_CANCELLED) {
      vv_error_code (VV_ERR_INVALID, "retention: backup %s has an unknown "
                     "status %d", b[i].id, (int) b[i].status);
      return -1;
    }
    by_id[i] = i;
  }
  qsort_r (by_id, n, sizeof by_id[0], cmp_id, c);
  for (size_t i = 1; i < n; i++)
    if (strcmp (b[by_id[i - 1]].id, b[by_id[i]].id) == 0) {
      vv_error_code (VV_ERR_INVALID, "retention: backup id %s appears twice",
                     b[by_id[i]].id);
      return -1;
    }

  for (size_t i = 0; i < n; i++) {
    struct node *nd = &nodes[i];

    nd->parent = NONE;
    if (ignored (&b[i]))
      continue;
    if (b[i].chain_id == NULL || b[i].chain_id[0] == '\0') {
      vv_error_code (VV_ERR_INVALID, "retention: backup %s has no chain",
                     b[i].id);
      return -1;
    }
    if (b[i].type == VV_RET_FULL && b[i].parent_id) {
      vv_error_code (VV_ERR_INVALID, "retention: backup %s is a full but has "
                     "a parent (%s)", b[i].id, b[i].parent_id);
      return -1;
    }
    if (b[i].type == VV_RET_INCREMENTAL && b[i].parent_id == NULL) {
      vv_error_code (VV_ERR_INVALID, "retention: backup %s is an incremental "
                     "without a parent", b[i].id);
      return -1;
    }
    if (b[i].type != VV_RET_FULL && b[i].type != VV_RET_INCREMENTAL) {
      vv_error_code (VV_ERR_INVALID, "retention: backup %s has an unknown "
                     "type %d", b[i].id, (int) b[i].type);
      return -1;
    }
    /* A parent that is no longer listed was deleted already. */
    if (b[i].parent_id)
      nd->parent = find_id (c, by_id, n, b[i].parent_id);
    nd->completed = b[i].status == VV_RET_COMPLETED;
    nd->in_flight = !nd->completed;
    nd->managed = nd->completed && b[i].origin == VV_RET_POLICY
      && r->policy && b[i].policy && strcmp (b[i].policy, r->policy) == 0;
  }

  /* Depths; a walk longer than n means the parents loop. */
  for (size_t i = 0; i < n; i++) {
    size_t d = 0;

    nodes[i].root = i;
    for (size_t j = nodes[i].parent; j != NONE; j = nodes[j].parent) {
      nodes[i].root = j;
      if (++d > n) {
        vv_error_code (VV_ERR_INVALID, "retention: the parents of backup %s "
                       "loop back on themselves; the catalog is "
                       "inconsistent", b[i].id);
        return -1;
      }
    }
    nodes[i].depth = d;
  }
  return 0;
}

/* Groups the completed backups by chain and ranks the automatic chains
 * newest first.  by_chain gets the completed backups in chain order.
 */
static int
build_chains (struct ctx *c, struct node *nodes, size_t n,
              size_t *by_chain, struct chain **ret_chains,
              size_t *ret_n_chains, size_t **ret_auto, size_t *ret_n_auto)
{
  const struct vv_ret_backup *b = c->b;
  _cleanup_free_ struct chain *chains = NULL;
  _cleanup_free_ size_t *autos = NULL;
  size_t m = 0, n_chains = 0, n_auto = 0;

  for (size_t i = 0; i < n; i++)
    if (nodes[i].completed)
      by_chain[m++] = i;
  qsort_r (by_chain, m, sizeof by_chain[0], cmp_chain_id, c);

  chains = calloc (m ? m : 1, sizeof *chains);
  autos = calloc (m ? m : 1, sizeof *autos);
  if (chains == NULL || autos == NULL) {
    vv_error_errno (errno, "retention: allocating chains");
    return -1;
  }
  for (size_t k = 0; k < m; k++) {
    size_t i = by_chain[k];
    struct chain *ch;

    if (n_chains == 0
        || strcmp (chains[n_chains - 1].id, b[i].chain_id) != 0) {
      ch = &chains[n_chains++];
      ch->id = b[i].chain_id;
      ch->start = b[i].created_at;
      ch->start_seq = b[i].seq;
      ch->first = k;
    }
    ch = &chains[n_chains - 1];
    ch->end = k + 1;
    if (b[i].created_at < ch->start
        || (b[i].created_at == ch->start && b[i].seq < ch->start_seq)) {
      ch->start = b[i].created_at;
      ch->start_seq = b[i].seq;
    }
    if (nodes[i].managed)
      ch->automatic = true;
    nodes[i].chain = n_chains - 1;
  }

  for (size_t k = 0; k < n_chains; k++)
    if (chains[k].automatic)
      autos[n_auto++] = k;
  c->chains = chains;
  qsort_r (autos, n_auto, sizeof autos[0], cmp_chain_newest, c);
  for (size_t k = 0; k < n_auto; k++)
    chains[autos[k]].rank = k;

  *ret_chains = TAKE_PTR (chains);
  *ret_n_chains = n_chains;
  *ret_auto = TAKE_PTR (autos);
  *ret_n_auto = n_auto;
  return 0;
}

/* Marks the managed backups some keep rule keeps. */
static void
apply_keep_rules (const struct ctx *c, struct node *nodes,
                  const size_t *newest, size_t m,
                  const struct vv_retention_rules *r)
{
  for (size_t k = 0; k < r->n_keep; k++) {
    const struct vv_keep_rule *rule = &r->keep[k];
    unsigned kept = 0;
    int64_t last = 0;

    for (size_t j = 0; j < m && kept < rule->count; j++) {
      size_t i = newest[j];
      int64_t bucket;

      if (!nodes[i].managed)
        continue;
      bucket = bucket_of (rule, c->b[i].created_at);
      if (kept == 0 || bucket != last) {
        nodes[i].kept_by_rule = true;
        last = bucket;
        kept++;
      }
    }
  }
}

static void
want (struct node *nodes, size_t i)
{
  nodes[i].wanted = true;
  for (size_t j = i; j != NONE; j = nodes[j].parent)
    nodes[j].wanted_below++;
}

/* Un-wants i; returns how many managed unprotected backups stop being
 * kept because of it.
 */
static size_t
unwant (const struct ctx *c, struct node *nodes, size_t i)
{
  size_t freed = 0;

  nodes[i].wanted = false;
  for (size_t j = i; j != NONE; j = nodes[j].parent)
    if (--nodes[j].wanted_below == 0 && nodes[j].managed
        && !c->b[j].protected)
      freed++;
  return freed;
}

static void
format_reason (const struct vv_ret_backup *b, const struct node *nd,
               const struct chain *chains,
               const struct vv_retention_rules *r, char *ret)
{
  char rules[VV_RETENTION_REASON_MAX] = "";
  char age[VV_DURATION_STR_MAX];
  size_t len = 0;

  switch (nd->why) {
  case WHY_CHAIN:
    for (size_t k = 0; k < r->n_keep; k++) {
      char one[VV_KEEP_RULE_STR_MAX];

      vv_format_keep_rule (&r->keep[k], one);
      len += snprintf (rules + len, sizeof rules - len, "%s%s",
                       k ? ", " : "", one);
      if (len >= sizeof rules)
        break;
    }
    if (r->retention == 1)
      snprintf (ret, VV_RETENTION_REASON_MAX,
                "chain %s is older than the newest chain%s%s%s",
                chains[nd->chain].id, r->n_keep ? " and no keep rule (" : "",
                rules, r->n_keep ? ") keeps it" : "");
    else
      snprintf (ret, VV_RETENTION_REASON_MAX,
                "chain %s is older than the newest %u chains%s%s%s",
                chains[nd->chain].id, r->retention,
                r->n_keep ? " and no keep rule (" : "", rules,
                r->n_keep ? ") keeps it" : "");
    break;
  case WHY_MAX_AGE:
    vv_format_duration (r->max_age, age);
    snprintf (ret, VV_RETENTION_REASON_MAX, "older than max age %s", age);
    break;
  case WHY_MAX_BACKUPS:
    snprintf (ret, VV_RETENTION_REASON_MAX, "more than %u automatic "
              "backups (max backups); chain %s is the oldest",
              r->max_backups, chains[nd->chain].id);
    break;
  case WHY_MANUAL:
    snprintf (ret, VV_RETENTION_REASON_MAX,
              "manual backup beyond the manual limit of %u", r->manual_limit);
    break;
  case WHY_NONE:
    /* Not reached: only unwanted backups are deleted. */
    snprintf (ret, VV_RETENTION_REASON_MAX, "no rule keeps backup %s", b->id);
    break;
  }
}

int
vv_retention_decide (const struct vv_ret_backup *backups, size_t n,
                     const struct vv_retention_rules *r, time_t now,
                     struct vv_retention_delete **ret, size_t *ret_n)
{
  struct ctx c = { .b = backups };
  _cleanup_free_ struct node *nodes = NULL;
  _cleanup_free_ size_t *by_id = NULL;
  _cleanup_free_ size_t *by_chain = NULL;
  _cleanup_free_ size_t *newest = NULL;
  _cleanup_free_ struct chain *chains = NULL;
  _cleanup_free_ size_t *autos = NULL;
  _cleanup_free_ struct vv_retention_delete *out = NULL;
  size_t n_chains, n_auto, m = 0, n_out = 0, n_manual = 0;

  if (vv_retention_rules_check (r) == -1)
    return -1;
  if (n > VV_RETENTION_INPUT_MAX) {
    vv_error_code (VV_ERR_INVALID, "retention: %zu backups, at most %d per "
                   "instance", n, VV_RETENTION_INPUT_MAX);
    return -1;
  }
  if (n == 0) {
    *ret = NULL;
    *ret_n = 0;
    return 0;
  }
  nodes = calloc (n, sizeof *nodes);
  by_id = calloc (n, sizeof *by_id);
  by_chain = calloc (n, sizeof *by_chain);
  newest = calloc (n, sizeof *newest);
  if (!nodes || !by_id || !by_chain || !newest) {
    vv_error_errno (errno, "retention: allocating");
    return -1;
  }
  c.nodes = nodes;
  if (link_backups (&c, nodes, by_id, n, r) == -1)
    return -1;
  if (build_chains (&c, nodes, n, by_chain, &chains, &n_chains,
                    &autos, &n_auto) == -1)
    return -1;
  c.chains = chains;

  for (size_t i = 0; i < n; i++)
    if (nodes[i].completed)
      newest[m++] = i;
  qsort_r (newest, m, sizeof newest[0], cmp_newest, &c);
  apply_keep_rules (&c, nodes, newest, m, r);

  /* What each rule wants on its own (docs/retention.md, steps 1-4). */
  for (size_t j = 0; j < m; j++) {
    size_t i = newest[j];
    const struct vv_ret_backup *b = &backups[i];
    struct node *nd = &nodes[i];

    if (b->protected)
      nd->wanted = true;
    else if (nd->managed) {
      nd->wanted = chains[nd->chain].rank < r->retention || nd->kept_by_rule;
      if (!nd->wanted)
        nd->why = WHY_CHAIN;
      if (r->max_age && b->created_at < now - r->max_age) {
        nd->wanted = false;
        nd->why = WHY_MAX_AGE;
      }
    }
    else if (b->origin == VV_RET_MANUAL) {
      nd->wanted = r->manual_limit == 0 || n_manual < r->manual_limit;
      n_manual++;
      if (!nd->wanted)
        nd->why = WHY_MANUAL;
    }
    else
      nd->wanted = true;        /* another policy's: not ours to expire */
  }
  for (size_t i = 0; i < n; i++)
    if (nodes[i].in_flight || (nodes[i].completed && nodes[i].wanted))
      want (nodes, i);

  /* Max backups: whole chains, oldest first, never the newest (step 5). */
  if (r->max_backups) {
    size_t count = 0;

    for (size_t i = 0; i < n; i++)
      if (nodes[i].managed && !backups[i].protected
          && nodes[i].wanted_below > 0)
        count++;
    for (size_t k = n_auto; k > 1 && count > r->max_backups; k--) {
      const struct chain *ch = &chains[autos[k - 1]];

      for (size_t p = ch->first; p < ch->end; p++) {
        size_t i = by_chain[p];

        if (nodes[i].managed && nodes[i].wanted && !backups[i].protected) {
          nodes[i].why = WHY_MAX_BACKUPS;
          count -= unwant (&c, nodes, i);
        }
      }
    }
  }

  /* Everything completed that nothing wants, children first. */
  for (size_t i = 0; i < n; i++)
    if (nodes[i].completed && nodes[i].wanted_below == 0)
      by_id[n_out++] = i;
  qsort_r (by_id, n_out, sizeof by_id[0], cmp_delete_order, &c);
  if (n_out) {
    out = calloc (n_out, sizeof *out);
    if (out == NULL) {
      vv_error_errno (errno, "retention: allocating the result");
      return -1;
    }
  }
  for (size_t k = 0; k < n_out; k++) {
    size_t i = by_id[k];

    out[k].id = backups[i].id;
    out[k].index = i;
    format_reason (&backups[i], &nodes[i], chains, r, out[k].reason);
  }
  *ret = TAKE_PTR (out);
  *ret_n = n_out;
  return 0;
}
