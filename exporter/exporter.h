/*
 * exporter/ API: the one thread that drains the sample ring, aggregates,
 * symbolizes, encodes pprof and writes it out. Called from preload/ only.
 */
#ifndef LP_EXPORTER_H
#define LP_EXPORTER_H

/* Starts the exporter thread (all signals blocked). 0 or a negative errno. */
int lp_exporter_start(void) __attribute__((warn_unused_result));

/*
 * Asks the exporter to write what it has now and waits up to timeout_ms for it.
 * When streaming, pending uploads then get at most LIBPROF_EXIT_TIMEOUT and
 * what is left is written as files, so timeout_ms should leave room for that.
 * final: the thread writes the last profile and exits (exit), otherwise it goes
 * on (exec: the profile is written before the program is replaced; if exec
 * fails, profiling continues). Safe to call when the thread is not running.
 */
void lp_exporter_flush(int final, int timeout_ms);

/* Forked child: forget the parent's thread, locks and tables; start anew. */
void lp_exporter_after_fork(void);

#endif
