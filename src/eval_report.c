/*
** eval_report.c -- the HTML report of an evaluation: one self-contained
** page (inline CSS and SVG; no script, font, image or network access) that
** a person can open from disk or attach to a review.
**
** Sections: what was measured (counts, parameters, the MaxP note), a bar
** chart of every metric per stage, the per-query nDCG@10 distribution of
** each stage, the per-query win/loss plot of a comparison, and each
** stage's latency histogram with p50/p95/p99 marked. Every chart is
** followed by its numbers in a table, so nothing is only a picture.
**
** Invariant: all text that came from input files (stage names, query ids,
** the title) is HTML-escaped. The page is built in memory (a few hundred
** KiB for thousands of queries) and replaces `path` atomically.
*/
#include "plumb_impl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const palette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759",
                                      "#76b7b2", "#edc948", "#b07aa1", "#ff9da7"};
#define NPAL (sizeof palette / sizeof palette[0])

static const char *const labels[PLUMB_METRIC_COUNT] = {"nDCG@10", "R@10",    "R@100", "R@1000",
                                                       "MRR@10",  "MAP@100", "P@10"};

static void esc(buf *b, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': buf_puts(b, "&amp;"); break;
        case '<': buf_puts(b, "&lt;"); break;
        case '>': buf_puts(b, "&gt;"); break;
        case '"': buf_puts(b, "&quot;"); break;
        case '\'': buf_puts(b, "&#39;"); break;
        default:
            if ((unsigned char)*s < 0x20) buf_putc(b, ' ');
            else buf_putc(b, *s);
        }
    }
}

static const char *color(size_t i) { return palette[i % NPAL]; }

static int cmp_dbl(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* ---------------------------------------------------------------- */
/* Sections                                                           */
/* ---------------------------------------------------------------- */

static void head(buf *b, const char *title) {
    buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>");
    esc(b, title);
    buf_puts(b,
             "</title>\n<style>\n"
             "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;"
             "margin:24px auto;max-width:1000px;color:#222;padding:0 16px}\n"
             "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;"
             "border-bottom:1px solid #ddd;padding-bottom:4px}\n"
             ".sub{color:#666;margin:0 0 12px}\n"
             "table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;"
             "border-bottom:1px solid #eee;text-align:right}th{background:#f6f6f6}\n"
             "td:first-child,th:first-child{text-align:left}\n"
             ".note{color:#555;font-size:13px;max-width:900px}\n"
             "svg{display:block;margin:6px 0}svg text{font:12px system-ui,Helvetica,Arial,"
             "sans-serif;fill:#333}\n"
             ".sw{display:inline-block;width:11px;height:11px;margin:0 4px 0 12px;"
             "vertical-align:-1px}\n"
             ".win{color:#2e7d32}.loss{color:#c62828}\n"
             "</style></head><body>\n");
}

static void summary(buf *b, const char *title, const plumb_eval_result *r) {
    char date[40];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tm);
    buf_puts(b, "<h1>");
    esc(b, title);
    buf_printf(b, "</h1>\n<p class=\"sub\">plumb %s &middot; %s</p>\n", plumb_libversion(), date);
    const plumb_eval_counts *c = &r->counts;
    buf_puts(b, "<table>\n");
    buf_printf(b, "<tr><td>queries evaluated</td><td>%lld</td></tr>\n", (long long)c->evaluated);
    if (c->queries)
        buf_printf(b, "<tr><td>queries in the queries file</td><td>%lld</td></tr>\n",
                   (long long)c->queries);
    buf_printf(b,
               "<tr><td>skipped: no judgment</td><td>%lld</td></tr>\n"
               "<tr><td>skipped: no relevant judgment</td><td>%lld</td></tr>\n"
               "<tr><td>judgments (relevant)</td><td>%lld (%lld)</td></tr>\n"
               "<tr><td>qrels queries not found</td><td>%lld</td></tr>\n",
               (long long)c->skipped_unjudged, (long long)c->skipped_no_relevant,
               (long long)c->judgments, (long long)c->relevant, (long long)c->unknown_queries);
    if (c->unknown_docs >= 0)
        buf_printf(b, "<tr><td>judged documents not in the index</td><td>%lld of %lld</td></tr>\n",
                   (long long)c->unknown_docs, (long long)c->judged_docs);
    buf_printf(b, "<tr><td>documents ranked per query</td><td>%d</td></tr>\n", r->depth);
    buf_printf(b, "<tr><td>hits equal to the query id</td><td>%s</td></tr>\n",
               r->drop_self ? "dropped (BEIR)" : "kept");
    buf_printf(b, "<tr><td>evaluation time</td><td>%.2f s</td></tr>\n</table>\n", r->elapsed_s);
    for (size_t s = 0; s < r->nstages; s++) {
        const plumb_eval_stage_result *st = &r->stage[s];
        if (!st->rerank_fallbacks) continue;
        buf_puts(b, "<p class=\"note\"><b>Stage ");
        esc(b, st->name);
        buf_printf(b, ": %lld of %zu searches fell back to the stage-1 order</b> (the reranker "
                   "failed; those queries were measured as stage 1): ",
                   (long long)st->rerank_fallbacks, st->nq);
        esc(b, st->rerank_error);
        buf_puts(b, "</p>\n");
    }
    buf_puts(b,
             "<p class=\"note\">Metrics follow trec_eval: documents sorted by score, ties by "
             "document id descending; nDCG@10 with linear gains (the judgment value) and "
             "log<sub>2</sub>(rank+1) discount, ideal DCG over all judged documents; recall and "
             "MAP over all relevant judgments, retrieved or not. Means are over queries with "
             "at least one relevant judgment. Judgments name documents while searches return "
             "chunks: a document scores its best chunk (MaxP), and enough chunks are fetched "
             "to rank the documents above.</p>\n");
}

static void legend(buf *b, const plumb_eval_result *r) {
    buf_puts(b, "<div>");
    for (size_t s = 0; s < r->nstages; s++) {
        buf_printf(b, "<span class=\"sw\" style=\"background:%s\"></span>", color(s));
        esc(b, r->stage[s].name);
    }
    buf_puts(b, "</div>\n");
}

/* Grouped bars: one group per metric, one bar per stage, y in [0,1]. */
static void metric_bars(buf *b, const plumb_eval_result *r) {
    const int W = 960, H = 330, L = 44, R = 10, T = 16, B = 40;
    double pw = W - L - R, ph = H - T - B;
    double gw = pw / PLUMB_METRIC_COUNT;
    size_t ns = r->nstages ? r->nstages : 1;
    double bw = (gw * 0.8) / (double)ns;
    buf_puts(b, "<h2 id=\"metrics\">Metrics per stage</h2>\n");
    legend(b, r);
    buf_printf(b, "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
                  "aria-label=\"metrics per stage\">\n", W, H, W, H);
    for (int g = 0; g <= 5; g++) {
        double y = T + ph - ph * g / 5.0;
        buf_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>"
                      "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n",
                   L, W - R, y, y, g ? "#e6e6e6" : "#999", L - 6, y + 4, g / 5.0);
    }
    for (int m = 0; m < PLUMB_METRIC_COUNT; m++) {
        double gx = L + gw * m + gw * 0.1;
        for (size_t s = 0; s < r->nstages; s++) {
            double v = r->stage[s].mean[m];
            if (!(v >= 0)) v = 0;
            if (v > 1) v = 1;
            double h = ph * v, x = gx + bw * (double)s, y = T + ph - h;
            buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                          "fill=\"%s\"><title>",
                       x, y, bw * 0.92, h, color(s));
            esc(b, r->stage[s].name);
            buf_printf(b, " %s = %.4f</title></rect>\n", labels[m], r->stage[s].mean[m]);
            if (bw >= 26)
                buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                              "font-size=\"11\">%.3f</text>\n",
                           x + bw * 0.46, y - 4, r->stage[s].mean[m]);
        }
        buf_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                   L + gw * m + gw / 2, H - B + 18, labels[m]);
    }
    buf_puts(b, "</svg>\n<table><tr><th>stage</th>");
    for (int m = 0; m < PLUMB_METRIC_COUNT; m++) buf_printf(b, "<th>%s</th>", labels[m]);
    buf_puts(b, "<th>queries</th><th>no hits</th></tr>\n");
    for (size_t s = 0; s < r->nstages; s++) {
        buf_printf(b, "<tr><td><span class=\"sw\" style=\"background:%s;margin-left:0\"></span>",
                   color(s));
        esc(b, r->stage[s].name);
        buf_puts(b, "</td>");
        for (int m = 0; m < PLUMB_METRIC_COUNT; m++)
            buf_printf(b, "<td>%.4f</td>", r->stage[s].mean[m]);
        buf_printf(b, "<td>%zu</td><td>%lld</td></tr>\n", r->stage[s].nq,
                   (long long)r->stage[s].no_hits);
    }
    buf_puts(b, "</table>\n");
}

/* Each stage's per-query nDCG@10, sorted: how the mean is made up. */
static plumb_status distribution(buf *b, const plumb_eval_result *r) {
    const int W = 960, H = 260, L = 44, R = 10, T = 12, B = 36;
    double pw = W - L - R, ph = H - T - B;
    buf_puts(b, "<h2 id=\"distribution\">Per-query nDCG@10, sorted</h2>\n");
    legend(b, r);
    buf_printf(b, "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
                  "aria-label=\"per-query nDCG@10 distribution\">\n", W, H, W, H);
    for (int g = 0; g <= 4; g++) {
        double y = T + ph - ph * g / 4.0;
        buf_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>"
                      "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>\n",
                   L, W - R, y, y, g ? "#e6e6e6" : "#999", L - 6, y + 4, g / 4.0);
    }
    for (size_t s = 0; s < r->nstages; s++) {
        const plumb_eval_stage_result *st = &r->stage[s];
        if (!st->nq) continue;
        double *v = malloc(st->nq * sizeof *v);
        if (!v) return err_set(PLUMB_NOMEM, "report");
        for (size_t i = 0; i < st->nq; i++) v[i] = st->q[i].metric[PLUMB_METRIC_NDCG10];
        qsort(v, st->nq, sizeof *v, cmp_dbl);
        buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
                   color(s));
        for (size_t i = 0; i < st->nq; i++) {
            double x = L + (st->nq > 1 ? pw * (double)i / (double)(st->nq - 1) : pw / 2);
            double y = T + ph - ph * (v[st->nq - 1 - i] > 1 ? 1 : v[st->nq - 1 - i]);
            buf_printf(b, "%.1f,%.1f ", x, y);
        }
        buf_puts(b, "\"/>\n");
        free(v);
    }
    buf_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">queries, best first "
                  "(each stage sorted on its own)</text>\n</svg>\n", L + pw / 2, H - 8);
    return PLUMB_OK;
}

typedef struct diff_row {
    double d;
    const char *id;
} diff_row;

static int cmp_diff_desc(const void *x, const void *y) {
    const diff_row *a = x, *b = y;
    if (a->d > b->d) return -1;
    if (a->d < b->d) return 1;
    return strcmp(a->id, b->id);
}

/* One bar per query: B - A, sorted; wins above the line, losses below. */
static plumb_status win_loss(buf *b, const plumb_comparison *c) {
    const int W = 960, H = 300, L = 54, R = 10, T = 14, B = 34;
    double pw = W - L - R, ph = H - T - B;
    const char *mn = plumb_metric_name(c->metric);
    buf_puts(b, "<h2 id=\"compare\">Per query: ");
    esc(b, c->name_b);
    buf_puts(b, " against ");
    esc(b, c->name_a);
    buf_puts(b, "</h2>\n");
    buf_printf(b, "<p><span class=\"win\">%lld wins</span>, <span class=\"loss\">%lld losses"
                  "</span>, %lld ties on %s over %zu queries; mean %.4f &rarr; %.4f "
                  "(%+.4f). Paired randomization test (%d permutations, seed %llu): "
                  "<b>p = %.4f</b>; paired t-test: t = %.3f, <b>p = %.4f</b>.",
               (long long)c->wins, (long long)c->losses, (long long)c->ties, mn, c->n, c->mean_a,
               c->mean_b, c->mean_diff, c->permutations, (unsigned long long)c->seed,
               c->p_randomization, c->t, c->p_ttest);
    if (c->only_a || c->only_b)
        buf_printf(b, " %lld queries only in A and %lld only in B are left out.",
                   (long long)c->only_a, (long long)c->only_b);
    buf_puts(b, "</p>\n");
    if (!c->n) return PLUMB_OK;
    diff_row *d = malloc(c->n * sizeof *d);
    if (!d) return err_set(PLUMB_NOMEM, "report");
    double amax = 0;
    for (size_t i = 0; i < c->n; i++) {
        d[i].d = c->q[i].b - c->q[i].a;
        d[i].id = c->q[i].query_id;
        if (fabs(d[i].d) > amax) amax = fabs(d[i].d);
    }
    qsort(d, c->n, sizeof *d, cmp_diff_desc);
    if (amax <= 0) amax = 1;
    double scale = (ph / 2) / amax, y0 = T + ph / 2, bw = pw / (double)c->n;
    buf_printf(b, "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
                  "aria-label=\"per-query differences\">\n", W, H, W, H);
    for (int g = -2; g <= 2; g++) {
        double y = y0 - (ph / 2) * g / 2.0;
        buf_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>"
                      "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%+.2f</text>\n",
                   L, W - R, y, y, g ? "#eee" : "#777", L - 6, y + 4, amax * g / 2.0);
    }
    for (size_t i = 0; i < c->n; i++) {
        double h = fabs(d[i].d) * scale, x = L + bw * (double)i;
        const char *col = d[i].d > 0 ? "#2e7d32" : d[i].d < 0 ? "#c62828" : "#9e9e9e";
        if (h < 1) h = d[i].d == 0 ? 1 : 1.5;
        double y = d[i].d >= 0 ? y0 - h : y0;
        buf_printf(b, "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" fill=\"%s\">"
                      "<title>",
                   x, y, bw > 1.2 ? bw * 0.85 : bw, h, col);
        esc(b, d[i].id);
        buf_printf(b, ": %+.4f</title></rect>\n", d[i].d);
    }
    buf_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">queries, sorted by B "
                  "&minus; A (%s); hover a bar for its query</text>\n</svg>\n",
               L + pw / 2, H - 8, mn);
    /* the largest wins and losses, by name */
    size_t k = c->n < 10 ? c->n : 10;
    buf_puts(b, "<table><tr><th>largest wins</th><th>B &minus; A</th><th>largest losses</th>"
                "<th>B &minus; A</th></tr>\n");
    for (size_t i = 0; i < k; i++) {
        const diff_row *w = &d[i], *l = &d[c->n - 1 - i];
        buf_puts(b, "<tr><td>");
        if (w->d > 0) esc(b, w->id);
        buf_puts(b, "</td><td>");
        if (w->d > 0) buf_printf(b, "%+.4f", w->d);
        buf_puts(b, "</td><td>");
        if (l->d < 0) esc(b, l->id);
        buf_puts(b, "</td><td>");
        if (l->d < 0) buf_printf(b, "%+.4f", l->d);
        buf_puts(b, "</td></tr>\n");
    }
    buf_puts(b, "</table>\n");
    free(d);
    return PLUMB_OK;
}

/* A histogram of the single-threaded per-query latencies of each stage. */
static plumb_status latency(buf *b, const plumb_eval_result *r) {
    int any = 0;
    for (size_t s = 0; s < r->nstages; s++) any |= r->stage[s].latency.measured;
    if (!any) return PLUMB_OK;
    buf_puts(b, "<h2 id=\"latency\">Latency per query (one thread)</h2>\n");
    const int W = 960, H = 220, L = 54, R = 10, T = 14, B = 36, NB = 40;
    double pw = W - L - R, ph = H - T - B;
    for (size_t s = 0; s < r->nstages; s++) {
        const plumb_eval_stage_result *st = &r->stage[s];
        const plumb_eval_latency *l = &st->latency;
        if (!l->measured || !st->nq) continue;
        double *v = malloc(st->nq * sizeof *v);
        if (!v) return err_set(PLUMB_NOMEM, "report");
        for (size_t i = 0; i < st->nq; i++) v[i] = st->q[i].latency_ms;
        qsort(v, st->nq, sizeof *v, cmp_dbl);
        /* the range covers p99 with room; slower queries pile into the last bin,
        ** so one stray slow query cannot squash the picture */
        double hi = l->p99_ms * 1.25;
        if (hi > v[st->nq - 1]) hi = v[st->nq - 1];
        if (hi <= 0) hi = 1;
        int over = v[st->nq - 1] > hi;
        int cnt[NB];
        memset(cnt, 0, sizeof cnt);
        int cmax = 1;
        for (size_t i = 0; i < st->nq; i++) {
            int k = (int)(v[i] / hi * NB);
            if (k >= NB) k = NB - 1;
            if (k < 0) k = 0;
            if (++cnt[k] > cmax) cmax = cnt[k];
        }
        buf_puts(b, "<h3 style=\"font-size:15px;margin:14px 0 2px\">");
        esc(b, st->name);
        buf_printf(b, "</h3>\n<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
                      "aria-label=\"latency histogram\">\n", W, H, W, H);
        buf_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#999\"/>\n", L,
                   W - R, T + ph, T + ph);
        buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%d q</text>"
                      "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">0</text>\n",
                   L - 6, T + 10, cmax, L - 6, T + ph);
        double bw = pw / NB;
        for (int k = 0; k < NB; k++) {
            if (!cnt[k]) continue;
            double h = ph * cnt[k] / cmax;
            buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                          "fill=\"%s\"><title>%.2f-%.2f%s ms: %d queries</title></rect>\n",
                       L + bw * k, T + ph - h, bw * 0.9, h, color(s), hi * k / NB,
                       hi * (k + 1) / NB, over && k == NB - 1 ? " and over" : "", cnt[k]);
        }
        const double mark[3] = {l->p50_ms, l->p95_ms, l->p99_ms};
        const char *mname[3] = {"p50", "p95", "p99"};
        for (int i = 0; i < 3; i++) {
            double x = L + pw * (mark[i] / hi > 1 ? 1 : mark[i] / hi);
            buf_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%.1f\" stroke=\"#222\" "
                          "stroke-dasharray=\"4 3\"/><text x=\"%.1f\" y=\"%d\">%s "
                          "%.2f ms</text>\n",
                       x, x, T + 4 + 16 * i, T + ph, x + 4, T + 12 + 16 * i, mname[i], mark[i]);
        }
        for (int g = 0; g <= 4; g++)
            buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">%.*f%s</text>\n",
                       L + pw * g / 4.0, T + ph + 16, g == 4 ? "end" : "middle",
                       hi < 10 ? 2 : 1, hi * g / 4.0, g == 4 && over ? "+" : "");
        buf_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">milliseconds per "
                      "query (plumb_search, k = %d)</text>\n</svg>\n", L + pw / 2, H - 4,
                   st->search.k);
        free(v);
    }
    buf_puts(b, "<table><tr><th>stage</th><th>k</th><th>mean ms</th>"
                "<th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>q/s, 1 thread</th>"
                "<th>q/s, all threads</th><th>threads</th><th>same answers</th>"
                "<th>eval searches q/s</th></tr>\n");
    for (size_t s = 0; s < r->nstages; s++) {
        const plumb_eval_latency *l = &r->stage[s].latency;
        if (!l->measured) continue;
        buf_puts(b, "<tr><td>");
        esc(b, r->stage[s].name);
        buf_printf(b, "</td><td>%d</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td>"
                      "<td>%.0f</td>", r->stage[s].search.k, l->mean_ms, l->p50_ms, l->p95_ms,
                   l->p99_ms, l->qps);
        if (l->threads)
            buf_printf(b, "<td>%.0f</td><td>%d</td><td>%s</td>", l->qps_parallel, l->threads,
                       l->parallel_identical ? "yes" : "<b>NO</b>");
        else
            buf_puts(b, "<td>&ndash;</td><td>1</td><td>&ndash;</td>");
        buf_printf(b, "<td>%.0f</td></tr>\n", l->qps_eval);
    }
    buf_printf(b, "</table>\n<p class=\"note\">Latency is that of each stage's search as a "
                  "user runs it (k hits, %s), each query timed on its own on one thread; the "
                  "parallel pass runs the same searches over all queries at once and checks "
                  "that every answer is identical. The evaluation searches that rank %d "
                  "documents per query for the metrics ask for %d chunks or more; their "
                  "throughput is the last column.</p>\n",
               r->nstages && r->stage[0].search.with_text ? "with chunk texts and snippets"
                                                         : "without texts",
               r->depth, r->nstages ? r->stage[0].latency.k_eval : 0);
    return PLUMB_OK;
}

/* ---------------------------------------------------------------- */
/* The page                                                           */
/* ---------------------------------------------------------------- */

plumb_status plumb_eval_report_html(const char *path, const char *title,
                                    const plumb_eval_result *r, const plumb_comparison *cmp) {
    err_clear();
    if (!path || !*path || !r)
        return err_set(PLUMB_MISUSE, "plumb_eval_report_html: path or result is NULL");
    if (!title || !*title) title = "plumb eval";
    buf b = {0};
    plumb_status rc = PLUMB_OK;
    head(&b, title);
    summary(&b, title, r);
    metric_bars(&b, r);
    rc = distribution(&b, r);
    if (!rc && cmp) rc = win_loss(&b, cmp);
    else if (!rc)
        buf_puts(&b, "<h2>Per query wins and losses</h2>\n<p class=\"note\">No comparison in "
                     "this run: evaluate two or more stages, or give a baseline run file "
                     "(<code>plumb eval DIR --baseline RUN</code>, or <code>plumb eval "
                     "--compare RUN_A RUN_B --qrels FILE</code>).</p>\n");
    if (!rc) rc = latency(&b, r);
    buf_puts(&b, "</body></html>\n");
    if (!rc && b.oom) rc = err_set(PLUMB_NOMEM, "report");
    if (rc) {
        buf_free(&b);
        return rc;
    }
    char tpath[4200];
    if ((size_t)snprintf(tpath, sizeof tpath, "%s.tmp%ld", path, (long)getpid()) >= sizeof tpath) {
        buf_free(&b);
        return err_set(PLUMB_MISUSE, "plumb_eval_report_html: path too long");
    }
    FILE *f = fopen(tpath, "w");
    if (!f) {
        rc = err_set(PLUMB_IO, "cannot create '%s': %s", tpath, strerror(errno));
        buf_free(&b);
        return rc;
    }
    size_t w = fwrite(b.p, 1, b.len, f);
    int bad = w != b.len || ferror(f);
    if (fclose(f) != 0) bad = 1;
    buf_free(&b);
    if (bad) rc = err_set(PLUMB_IO, "cannot write '%s': %s", tpath, strerror(errno));
    else if (rename(tpath, path) != 0)
        rc = err_set(PLUMB_IO, "cannot rename '%s' to '%s': %s", tpath, path, strerror(errno));
    if (rc) remove(tpath);
    return rc;
}
