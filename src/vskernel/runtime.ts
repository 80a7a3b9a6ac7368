// The C text every generated workload starts with: the guest's /init (PID 1)
// and the helpers the scenario's ops become. One static binary is both: run
// as PID 1 it mounts tracefs, starts the scenario's processes with tracing
// filtered to their PIDs, waits for every one of them, prints the trace on
// the serial console and powers off; run as `/init w N` (exec) it runs
// program N. The generated part (cgen.ts) supplies PROGRAMS, the prog_N
// functions, REGION_PAGES and start_processes().

export const RUNTIME_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define REGION ((char *)0x200000000UL)
#define STACK_SIZE (64 * 1024)
#define STACKS 512

static unsigned char page_state[REGION_PAGES_MAX]; /* 0 unmapped, 1 read-write, 2 read-only */
static char stacks[STACKS][STACK_SIZE] __attribute__((aligned(64)));
static int next_stack;
static int ncpus_online;

static void task_end(int code) { syscall(SYS_exit, code); for (;;) {} }
/* An op the guest could not perform: the whole process dies of SIGKILL, which PID 1 counts as a failure. */
static void fail(void) { kill(getpid(), SIGKILL); for (;;) {} }

static void pin(int cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu % (ncpus_online > 0 ? ncpus_online : 1), &s);
  sched_setaffinity(0, sizeof s, &s);
}

static long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000L + t.tv_nsec;
}

/* compute: user-mode work for ns nanoseconds of the guest's clock */
static void spin_ns(long ns) {
  long end = now_ns() + ns;
  volatile unsigned long x = 0;
  while (now_ns() < end) x++;
}

static void sleep_ns(long ns) {
  struct timespec t = {ns / 1000000000L, ns % 1000000000L};
  while (nanosleep(&t, &t) != 0 && errno == EINTR) {}
}

static void map_page(unsigned long i) {
  void *p = mmap(REGION + i * PAGE, PAGE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (p == MAP_FAILED) fail();
  page_state[i] = 1;
}

/* mmap: pages [0, n) that are not mapped yet (never over a mapping: MAP_FIXED over one would unmap and flush) */
static void op_mmap(unsigned long n) {
  for (unsigned long i = 0; i < n; i++)
    if (page_state[i] == 0) map_page(i);
}

static void op_touch(unsigned long n) {
  for (unsigned long i = 0; i < n; i++) {
    if (page_state[i] == 0) map_page(i);
    volatile char *c = REGION + i * PAGE;
    if (page_state[i] == 1) *c = 1; /* a store only: a load first would map the zero page, and the store then copy it (a flush) */
    else (void)*c;
  }
}

static void op_munmap(unsigned long n) {
  munmap(REGION, n * PAGE);
  memset(page_state, 0, n);
}

/* mprotect: restrict makes [0, n) read-only, upgrade read-write (the pages are mapped first) */
static void op_mprotect(unsigned long n, int restrict_) {
  op_mmap(n);
  mprotect(REGION, n * PAGE, restrict_ ? PROT_READ : PROT_READ | PROT_WRITE);
  memset(page_state, restrict_ ? 2 : 1, n);
}

static void fpu_x87(void) { __asm__ volatile("fld1\n\tfstp %%st(0)" ::: "memory"); }
static void fpu_sse(void) { __asm__ volatile("pcmpeqd %%xmm1, %%xmm1" ::: "xmm1"); }
static void fpu_avx(void) {
  if (__builtin_cpu_supports("avx")) __asm__ volatile("vpcmpeqd %%ymm1, %%ymm1, %%ymm1" ::: "xmm1");
}

/* A touch of a page another thread of the mm has just unmapped: map it again (never over a mapping) and retry. */
static void on_segv(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  char *a = (char *)si->si_addr;
  if (a < REGION || a >= REGION + REGION_PAGES_MAX * PAGE) {
    signal(sig, SIG_DFL);
    return;
  }
  unsigned long i = (unsigned long)(a - REGION) / PAGE;
  mmap(REGION + i * PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  mprotect(REGION + i * PAGE, PAGE, PROT_READ | PROT_WRITE);
  page_state[i] = 1;
}

static void catch_segv(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigaction(SIGSEGV, &sa, NULL);
}

typedef void (*prog_fn)(void);
static int child_main(void *arg) {
  ((prog_fn)arg)();
  task_end(0);
  return 0;
}

/*
 * A new task is placed by the kernel's scheduler (wake_up_new_task), as the
 * model's select_task_rq places it: the parent's pinning is widened to every
 * CPU around the clone, so the child does not inherit it.
 */
static cpu_set_t unpin(void) {
  cpu_set_t old, all;
  sched_getaffinity(0, sizeof old, &old);
  CPU_ZERO(&all);
  for (int c = 0; c < ncpus_online; c++) CPU_SET(c, &all);
  sched_setaffinity(0, sizeof all, &all);
  return old;
}

static void repin(cpu_set_t old) { sched_setaffinity(0, sizeof old, &old); }

/* clone_thread / clone_vm: a task on the same mm, on a stack of its own */
static void spawn_pinned(prog_fn f, int flags) {
  int s = __atomic_fetch_add(&next_stack, 1, __ATOMIC_RELAXED) % STACKS;
  if (clone(child_main, stacks[s] + STACK_SIZE, flags, (void *)f) < 0) fail();
}

static void spawn(prog_fn f, int flags) {
  cpu_set_t old = unpin();
  spawn_pinned(f, flags);
  repin(old);
}
#define CLONE_PTHREAD (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM)

static void op_fork(prog_fn f) {
  cpu_set_t old = unpin();
  long p = syscall(SYS_fork);
  if (p != 0) repin(old);
  if (p == 0) { f(); task_end(0); }
  if (p < 0) fail();
}

static void op_exec(int n) {
  char num[16];
  snprintf(num, sizeof num, "%d", n);
  char *argv[] = {"/init", "w", num, NULL};
  char *envp[] = {NULL};
  execve("/init", argv, envp);
  fail();
}

/*@PROGRAMS@*/

/* ---- PID 1 ---- */

static void put(const char *s) { (void)!write(1, s, strlen(s)); }

static int wfile(const char *path, const char *text, int append) {
  int fd = open(path, O_WRONLY | (append ? O_APPEND : O_TRUNC));
  if (fd < 0) { put("@@ASIDLAB-ERROR cannot open "); put(path); put("\n"); return -1; }
  int r = write(fd, text, strlen(text));
  close(fd);
  if (r < 0) { put("@@ASIDLAB-ERROR cannot write "); put(path); put("\n"); return -1; }
  return 0;
}

static void dump(const char *path) {
  char buf[65536];
  int fd = open(path, O_RDONLY);
  if (fd < 0) return;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    (void)!write(1, buf, n);
  }
  close(fd);
}

static void poweroff(void) {
  tcdrain(1); /* the serial console's buffer reaches the host before the machine goes */
  sleep_ns(200000000L);
  sync();
  reboot(RB_POWER_OFF);
  for (;;) pause();
}

#define T "/sys/kernel/tracing/"
static int go_pipe[2], ready_pipe[2];

/*
 * Copy-on-write breaks of the pages PID 1 touched before fork (stack, data,
 * TLS) flush the TLB (a one-page local mm shootdown each): work the model
 * does not do. They happen here, before tracing starts.
 */
static void __attribute__((noinline)) pretouch(void) {
  volatile char pad[48 * 1024];
  for (unsigned long i = 0; i < sizeof pad; i += 512) pad[i] = 1;
  memset(page_state, 0, sizeof page_state);
  __atomic_store_n(&next_stack, next_stack, __ATOMIC_RELAXED);
  errno = 0;
  ncpus_online = ncpus_online + 0;
}

/* An initial process: pinned, then it waits until PID 1 has put its pid in the trace filter. */
static long start_process(prog_fn f, int cpu) {
  long p = syscall(SYS_fork);
  if (p == 0) {
    close(go_pipe[1]);
    catch_segv();
    pin(cpu);
    pretouch();
    char c = 1;
    (void)!write(ready_pipe[1], &c, 1); /* PID 1 turns tracing on once every process is here */
    close(ready_pipe[1]);
    while (read(go_pipe[0], &c, 1) < 0 && errno == EINTR) {}
    close(go_pipe[0]);
    f();
    task_end(0);
  }
  return p;
}

static void start_processes(long *pids, int *n);

int main(int argc, char **argv) {
  ncpus_online = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (argc >= 3 && strcmp(argv[1], "w") == 0) {
    int n = atoi(argv[2]);
    if (n < 0 || n >= PROGRAMS) fail();
    catch_segv();
    programs[n]();
    task_end(0);
  }
  mount("proc", "/proc", "proc", 0, NULL);
  mount("sysfs", "/sys", "sysfs", 0, NULL);
  if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL) != 0) {
    put("@@ASIDLAB-ERROR cannot mount tracefs\n");
    poweroff();
  }
  struct utsname u;
  uname(&u);
  char line[512];
  snprintf(line, sizeof line, "@@ASIDLAB-KERNEL %s %s cpus=%d\n", u.release, u.version, ncpus_online);
  put(line);
  {
    static char info[1 << 16];
    int fd = open("/proc/cpuinfo", O_RDONLY);
    ssize_t len = fd >= 0 ? read(fd, info, sizeof info - 1) : -1;
    if (fd >= 0) close(fd);
    info[len > 0 ? len : 0] = 0;
    char *flags = strstr(info, "\nflags");
    char *eol = flags ? strchr(flags + 1, '\n') : NULL;
    if (eol) *eol = 0;
    put("@@ASIDLAB-FLAGS ");
    put(flags ? flags + 1 : "flags: ?");
    put(" \n");
  }
  wfile(T "tracing_on", "0", 0);
  wfile(T "buffer_size_kb", "16384", 0);
  wfile(T "trace", "", 0);
  wfile(T "options/event-fork", "1", 0);
  int bad = 0;
  bad |= wfile(T "events/tlb/tlb_flush/enable", "1", 0);
  bad |= wfile(T "events/sched/sched_switch/enable", "1", 0);
  bad |= wfile(T "events/x86_fpu/enable", "1", 0);
  if (bad) poweroff();
  if (pipe(go_pipe) != 0 || pipe(ready_pipe) != 0) poweroff();
  long pids[1024];
  int n = 0;
  start_processes(pids, &n);
  close(go_pipe[0]);
  close(ready_pipe[1]);
  for (int i = 0; i < n; i++) {
    char c;
    ssize_t r = read(ready_pipe[0], &c, 1);
    if (r < 0 && errno == EINTR) { i--; continue; }
    if (r <= 0) break;
  }
  close(ready_pipe[0]);
  char list[16 * 1024];
  size_t off = 0;
  for (int i = 0; i < n && off + 24 < sizeof list; i++) off += snprintf(list + off, sizeof list - off, "%ld ", pids[i]);
  list[off] = 0;
  if (wfile(T "set_event_pid", list, 0)) poweroff();
  wfile(T "tracing_on", "1", 0);
  close(go_pipe[1]); /* every initial process starts */
  long t0 = now_ns();
  int status;
  int failed = 0;
  for (;;) {
    pid_t w = waitpid(-1, &status, __WALL);
    if (w < 0) { if (errno == EINTR) continue; break; }
    if (WIFSIGNALED(status)) failed++;
  }
  long t1 = now_ns();
  wfile(T "tracing_on", "0", 0);
  snprintf(line, sizeof line, "@@ASIDLAB-DONE ns=%ld failed=%d\n", t1 - t0, failed);
  put(line);
  put("@@ASIDLAB-TRACE-BEGIN\n");
  dump(T "trace");
  put("@@ASIDLAB-TRACE-END\n");
  dump(T "per_cpu/cpu0/stats");
  put("@@ASIDLAB-END\n");
  poweroff();
  return 0;
}
`;
