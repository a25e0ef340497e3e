/* eval_report.c -- HTML report of an evaluation (being written). */
#include "plumb_impl.h"

plumb_status plumb_eval_report_html(const char *path, const char *title,
                                    const plumb_eval_result *r, const plumb_comparison *cmp) {
    (void)path; (void)title; (void)r; (void)cmp;
    return err_set(PLUMB_ERROR, "not yet implemented");
}
