/* cmd_eval.c -- `plumb eval` (being written). */
#include "cli.h"

int cmd_eval(int argc, char **argv);
void cmd_eval_help(FILE *f);

int cmd_eval(int argc, char **argv) { (void)argc; (void)argv; return CLI_EXIT_FAIL; }
void cmd_eval_help(FILE *f) { fputs("plumb eval: not yet\n", f); }
