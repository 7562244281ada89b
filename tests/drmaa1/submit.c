/* A DRMAA 1.0 client in C: submits `sh -c 'echo ...; exit N'`, waits for it and reports how it
 * ended, then a bulk job of 3 tasks reaped with DRMAA_JOB_IDS_SESSION_ANY.
 * Usage: submit CONTACT OUTPUT_DIR EXIT_STATUS   (prints one "key=value" line per fact). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "drmaa.h"

static char err[DRMAA_ERROR_STRING_BUFFER];

#define CHECK(call)                                                         \
  do {                                                                      \
    int rc_ = (call);                                                       \
    if (rc_ != DRMAA_ERRNO_SUCCESS) {                                       \
      fprintf(stderr, "%s failed: %d (%s): %s\n", #call, rc_,               \
              drmaa_strerror(rc_), err);                                    \
      return 1;                                                             \
    }                                                                       \
  } while (0)

int main(int argc, char **argv) {
  char job_id[DRMAA_JOBNAME_BUFFER], waited[DRMAA_JOBNAME_BUFFER], value[DRMAA_ATTR_BUFFER];
  char path[4096], script[256];
  drmaa_job_template_t *jt = NULL;
  drmaa_attr_values_t *rusage = NULL;
  drmaa_job_ids_t *ids = NULL;
  int stat = 0, flag = 0, status = 0, ps = 0, rc, i;
  unsigned int major = 0, minor = 0;

  if (argc != 4) {
    fprintf(stderr, "usage: %s CONTACT OUTPUT_DIR EXIT_STATUS\n", argv[0]);
    return 2;
  }
  CHECK(drmaa_init(argv[1], err, sizeof err));
  CHECK(drmaa_version(&major, &minor, err, sizeof err));
  printf("version=%u.%u\n", major, minor);
  CHECK(drmaa_get_contact(value, sizeof value, err, sizeof err));
  printf("contact=%s\n", value);

  CHECK(drmaa_allocate_job_template(&jt, err, sizeof err));
  snprintf(script, sizeof script, "echo hello from C; exit %s", argv[3]);
  const char *args[] = {"-c", script, NULL};
  CHECK(drmaa_set_attribute(jt, DRMAA_REMOTE_COMMAND, "/bin/sh", err, sizeof err));
  CHECK(drmaa_set_vector_attribute(jt, DRMAA_V_ARGV, args, err, sizeof err));
  CHECK(drmaa_set_attribute(jt, DRMAA_JOIN_FILES, "y", err, sizeof err));
  snprintf(path, sizeof path, ":%s/single.out", argv[2]);
  CHECK(drmaa_set_attribute(jt, DRMAA_OUTPUT_PATH, path, err, sizeof err));
  CHECK(drmaa_get_attribute(jt, DRMAA_OUTPUT_PATH, value, sizeof value, err, sizeof err));
  printf("output_path=%s\n", value);

  CHECK(drmaa_run_job(job_id, sizeof job_id, jt, err, sizeof err));
  printf("job_id=%s\n", job_id);
  CHECK(drmaa_job_ps(job_id, &ps, err, sizeof err));
  printf("ps_known=%d\n", ps != DRMAA_PS_UNDETERMINED);
  CHECK(drmaa_wait(job_id, waited, sizeof waited, &stat, DRMAA_TIMEOUT_WAIT_FOREVER, &rusage,
                   err, sizeof err));
  printf("waited=%s\n", waited);
  CHECK(drmaa_wifexited(&flag, stat, err, sizeof err));
  printf("exited=%d\n", flag);
  if (flag) {
    CHECK(drmaa_wexitstatus(&status, stat, err, sizeof err));
    printf("exit_status=%d\n", status);
  }
  while (drmaa_get_next_attr_value(rusage, value, sizeof value) == DRMAA_ERRNO_SUCCESS)
    printf("rusage.%s\n", value);
  drmaa_release_attr_values(rusage);
  /* Reaped by the wait: a second wait knows the job no more. */
  rc = drmaa_wait(job_id, waited, sizeof waited, &stat, DRMAA_TIMEOUT_NO_WAIT, NULL, err, sizeof err);
  printf("second_wait=%d\n", rc);

  /* A bulk job: tasks 1, 3, 5, each writing its own file. */
  snprintf(path, sizeof path, ":%s/task.%s", argv[2], DRMAA_PLACEHOLDER_INCR);
  CHECK(drmaa_set_attribute(jt, DRMAA_OUTPUT_PATH, path, err, sizeof err));
  const char *task_args[] = {"-c", "echo task", NULL};
  CHECK(drmaa_set_vector_attribute(jt, DRMAA_V_ARGV, task_args, err, sizeof err));
  CHECK(drmaa_run_bulk_jobs(&ids, jt, 1, 5, 2, err, sizeof err));
  while (drmaa_get_next_job_id(ids, value, sizeof value) == DRMAA_ERRNO_SUCCESS)
    printf("task_id=%s\n", value);
  drmaa_release_job_ids(ids);
  for (i = 0; i < 3; i++) {
    CHECK(drmaa_wait(DRMAA_JOB_IDS_SESSION_ANY, waited, sizeof waited, &stat,
                     DRMAA_TIMEOUT_WAIT_FOREVER, NULL, err, sizeof err));
    CHECK(drmaa_wexitstatus(&status, stat, err, sizeof err));
    printf("any=%s:%d\n", waited, status);
  }
  rc = drmaa_wait(DRMAA_JOB_IDS_SESSION_ANY, waited, sizeof waited, &stat, DRMAA_TIMEOUT_NO_WAIT,
                  NULL, err, sizeof err);
  printf("any_after_all=%d\n", rc);

  CHECK(drmaa_delete_job_template(jt, err, sizeof err));
  CHECK(drmaa_exit(err, sizeof err));
  rc = drmaa_exit(err, sizeof err);
  printf("second_exit=%d\n", rc);
  return 0;
}
