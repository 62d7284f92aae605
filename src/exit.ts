// The exit codes every command documents (README "Exit codes"). 1 is reserved for internal errors:
// reaching it is always a bug.
export const EXIT = {
  ok: 0,
  internal: 1,
  /** Bad options, bad input files, refused work: one line on stderr says what and where. */
  usage: 2,
  /** Done, but some images could not be read: each is named (and, for extract, recorded in the cache). */
  someFailed: 3,
  /** Stopped by SIGINT/SIGTERM; finished work is kept and a rerun resumes. */
  interrupted: 130,
} as const;
