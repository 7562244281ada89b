/* pydrmaa2's fork server: starts process-tracker jobs for the agent from a process of a few
 * hundred KiB, so that a job's max_rss is its own and not the ~26 MB Python agent's (at exec the
 * kernel records the peak RSS of the address space the job leaves into the job's rusage).
 *
 * The agent starts it with a Unix stream socket as its stdin and sends one request at a time:
 * a frame of the layout below. A stdio stream the frame names a file for is opened by the job's
 * process (before its umask changes: as the agent would have), so that creating output files
 * costs the agent nothing; any other stream is /dev/null. (No descriptors travel with a request:
 * passing them cost the agent a seventh of its loop's time.)
 * Each job is created as posix_spawn does (CLONE_VM | CLONE_VFORK: no copy of this process, and
 * this server waits until the job has exec'd or failed), plus CLONE_PARENT: the agent, not this
 * server, is the job's parent, so the agent reaps it with wait4 and watches it with a pidfd as
 * any child of its own. The reply is three int32: the job's pid (-1: no process), an errno (0:
 * the job has exec'd) and the step that failed (enum step). A job that failed before exec is a
 * zombie child of the agent, for the agent to reap.
 *
 * Request frame, native byte order, no padding:
 *   uint32 length of what follows
 *   int32 umask (-1: keep), int32 set_nice (0/1), int32 nice, int32 nlimits, int32 nexec,
 *   int32 argc, int32 envc, int32 join (1: stderr goes where stdout goes)
 *   nlimits x { int32 resource, int64 soft, int64 hard } (-1: RLIM_INFINITY)
 *   NUL-terminated strings: cwd; the files of stdin, stdout and stderr (empty: /dev/null; stdin
 *   read-only, the others created or truncated, mode 0644 under the umask); nexec
 *   executables (tried in turn, as Python's subprocess does), argc arguments, envc NAME=VALUE
 *   entries
 * The server exits when the agent closes the socket.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define SOCK 0
#define HELLO "pydrmaa2-spawn 3\n"
#define MAX_FRAME (64u << 20)
#define LIMIT_SIZE (sizeof(int32_t) + 2 * sizeof(uint64_t))

/* The step a start failed at, as the reply names it. */
enum step { OK = 0, STEP_CLONE, STEP_FDS, STEP_CHDIR, STEP_RLIMIT, STEP_NICE, STEP_EXEC,
            STEP_REQUEST, STEP_OPEN_IN, STEP_OPEN_OUT, STEP_OPEN_ERR };

struct reply { int32_t pid, err, step; };

/* One job as its request describes it, shared with the job's process until it execs. */
struct job {
    int fds[3];
    int32_t mask, set_nice, nice, nlimits, join;
    const char *limits, *cwd, *files[3];
    char **exe, **argv, **envp;
    volatile int32_t err, step;  /* written by the job's process when it fails */
};

/* The job's process runs on this stack until exec (this server waits meanwhile). */
static char job_stack[64 * 1024] __attribute__((aligned(16)));

static int read_full(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int32_t take_i32(const char **p) {
    int32_t v;
    memcpy(&v, *p, sizeof v);
    *p += sizeof v;
    return v;
}

static uint64_t take_u64(const char **p) {
    uint64_t v;
    memcpy(&v, *p, sizeof v);
    *p += sizeof v;
    return v;
}

/* Point vec[0..n) at the next n NUL-terminated strings of [*p, end); -1 if they run over. */
static int take_strings(const char **p, const char *end, char **vec, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        const char *nul = memchr(*p, '\0', (size_t)(end - *p));
        if (nul == NULL) return -1;
        vec[i] = (char *)*p;
        *p = nul + 1;
    }
    vec[n] = NULL;
    return 0;
}

/* The signals this server ignores (inherited from the agent's starter), found once at start:
 * the only ones a job's process must set back to default before exec. */
static int ignored[NSIG], n_ignored;

static void find_ignored(void) {
    for (int s = 1; s < NSIG; s++) {
        struct sigaction sa;
        if (s != SIGKILL && s != SIGSTOP && sigaction(s, NULL, &sa) == 0
                && !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN)
            ignored[n_ignored++] = s;
    }
}

/* In the job's process: what subprocess.Popen(start_new_session=True, close_fds=True) does
 * (every descriptor of this server is close-on-exec), then the limits, then exec. */
static int job_main(void *arg) {
    struct job *j = arg;
    for (int i = 0; i < 3; i++) {
        j->step = STEP_OPEN_IN + i;
        if (i == 2 && j->join) {
            j->fds[2] = j->fds[1];
        } else if (j->files[i][0]) {
            int fd = open(j->files[i], i ? O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC
                                         : O_RDONLY | O_CLOEXEC, 0644);
            if (fd < 0) goto fail;
            j->fds[i] = fd;
        }
    }
    j->step = STEP_FDS;
    for (int i = 0; i < 3; i++)
        if ((j->fds[i] == i ? fcntl(i, F_SETFD, 0) : dup2(j->fds[i], i)) < 0) goto fail;
    j->step = STEP_CHDIR;
    if (chdir(j->cwd) < 0) goto fail;
    if (j->mask >= 0) umask((mode_t)j->mask);
    /* Every signal as a newly started program has it: the agent's starter may have ignored
     * some (nohup: SIGHUP), which a job must not inherit. Only an ignored signal outlives
     * exec (a caught one becomes default there): those found at the server's start. */
    for (int i = 0; i < n_ignored; i++) signal(ignored[i], SIG_DFL);
    setsid();
    j->step = STEP_RLIMIT;
    const char *p = j->limits;
    for (int32_t i = 0; i < j->nlimits; i++) {
        int32_t resource = take_i32(&p);
        struct rlimit rl;
        rl.rlim_cur = (rlim_t)take_u64(&p);
        rl.rlim_max = (rlim_t)take_u64(&p);
        if (setrlimit(resource, &rl) < 0) goto fail;
    }
    j->step = STEP_NICE;
    if (j->set_nice && setpriority(PRIO_PROCESS, 0, j->nice) < 0) goto fail;
    j->step = STEP_EXEC;
    int first = 0;  /* the first error that is not "no such file" wins, as in subprocess */
    for (int i = 0; j->exe[i]; i++) {
        execve(j->exe[i], j->argv, j->envp);
        if (errno != ENOENT && errno != ENOTDIR && first == 0) first = errno;
    }
    if (first) errno = first;
fail:
    j->err = errno;
    _exit(127);
}

/* This server's /dev/null (close-on-exec): a job's stdin, stdout and stderr where the request
 * names no file. */
static int devnull = -1;

/* Start the job a frame describes; its process has exec'd (or failed) when this returns. */
static struct reply spawn(char *frame, uint32_t len, char **vec) {
    struct reply reply = { -1, EINVAL, STEP_REQUEST };
    const char *p = frame, *end = frame + len;
    struct job j = { .fds = { devnull, devnull, devnull } };
    if (len < 8 * sizeof(int32_t) || devnull < 0) return reply;
    j.mask = take_i32(&p);
    j.set_nice = take_i32(&p);
    j.nice = take_i32(&p);
    j.nlimits = take_i32(&p);
    int32_t nexec = take_i32(&p), argc = take_i32(&p), envc = take_i32(&p);
    j.join = take_i32(&p);
    if (j.nlimits < 0 || nexec < 1 || argc < 0 || envc < 0
            || (size_t)j.nlimits > (size_t)(end - p) / LIMIT_SIZE
            || (size_t)nexec + (size_t)argc + (size_t)envc + 3 > len)
        return reply;
    j.limits = p;
    p += (size_t)j.nlimits * LIMIT_SIZE;
    char *cwd[5];
    j.exe = vec;
    j.argv = j.exe + nexec + 1;
    j.envp = j.argv + argc + 1;
    if (take_strings(&p, end, cwd, 4) < 0 || take_strings(&p, end, j.exe, nexec) < 0
            || take_strings(&p, end, j.argv, argc) < 0 || take_strings(&p, end, j.envp, envc) < 0)
        return reply;
    j.cwd = cwd[0];
    for (int i = 0; i < 3; i++) j.files[i] = cwd[i + 1];
    j.err = 0;
    pid_t pid = clone(job_main, job_stack + sizeof job_stack,
                      CLONE_VM | CLONE_VFORK | CLONE_PARENT | SIGCHLD, &j);
    if (pid < 0) {
        reply.err = errno;
        reply.step = STEP_CLONE;
        return reply;
    }
    reply.pid = pid;
    reply.err = j.err;
    reply.step = j.err ? j.step : OK;
    return reply;
}

/* After a large request: this server's peak RSS back to its current RSS (see serve_one). */
static void forget_peak(void) {
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, "5", 1) < 0) {
            /* an older kernel: the peak stays */
        }
        close(fd);
    }
}

/* A request of up to 64 KiB (vector and frame: most are a few KiB) is read into this buffer,
 * saving a mapping and its page faults per job; its pages stay, 64 KiB at most. */
static char small_request[64u << 10] __attribute__((aligned(16)));

/* A larger request's string vector and frame live in one mapping, unmapped after use, and the
 * peak RSS a large one left is forgotten: a job leaving this server carries the server's peak
 * RSS into its own rusage, which must stay a few hundred KiB whatever earlier jobs'
 * environments were. */
static int serve_one(void) {
    uint32_t len;
    if (read_full(SOCK, &len, sizeof len) < 0) return -1;
    struct reply reply = { -1, E2BIG, STEP_REQUEST };
    size_t vec_size = ((size_t)len + 3) * sizeof(char *);
    size_t size = vec_size + len + 1;
    int small = size <= sizeof small_request;
    char *map = small ? small_request
              : len <= MAX_FRAME ? mmap(NULL, size, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : MAP_FAILED;
    if (map == MAP_FAILED) {
        char sink[4096];  /* read the frame anyway, to stay in step with the agent */
        if (len <= MAX_FRAME) reply.err = ENOMEM;
        for (uint32_t left = len, n; left; left -= n) {
            n = left < sizeof sink ? left : sizeof sink;
            if (read_full(SOCK, sink, n) < 0) return -1;
        }
    } else {
        char *frame = map + vec_size;
        if (read_full(SOCK, frame, len) < 0) return -1;
        frame[len] = '\0';
        reply = spawn(frame, len, (char **)map);
        if (!small) {
            munmap(map, size);
            if (size > (256u << 10)) forget_peak();
        }
    }
    return write_full(SOCK, &reply, sizeof reply);
}

int main(void) {
    fcntl(SOCK, F_SETFD, FD_CLOEXEC);
    find_ignored();
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (write_full(SOCK, HELLO, sizeof HELLO - 1) < 0) return 1;
    while (serve_one() == 0) {
    }
    return 0;
}
