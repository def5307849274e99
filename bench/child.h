#ifndef BENCH_CHILD_H
#define BENCH_CHILD_H

/* Runs `PROG --child WORKLOAD SUBJECT [--quick] [--probe] [--seed N]`;
 * returns the exit status (see child.c). */
int bench_child_main(int argc, char **argv);

#endif
