/*
 * repro-exec-enqcmd.c: ENQCMD after exec dies of SIGSEGV.
 *
 * UNTESTED ON HARDWARE. Written from the kernel source and the asidlab
 * model (docs/findings/exec-pasid-activated.md); it has only been compiled.
 *
 * What it does:
 *   stage 1: open a shared DSA work queue (SVA bind: the mm gets a PASID),
 *            map its portal, ENQCMD a NOOP descriptor (the first ENQCMD takes
 *            #GP; try_fixup_enqcmd_gp() writes IA32_PASID and sets
 *            current->pasid_activated), wait for its completion, close,
 *            then execve() itself ("/proc/self/exe").
 *   stage 2: open the queue again (the new mm gets a PASID), map the portal,
 *            ENQCMD again. fpu_flush_thread() reset IA32_PASID at exec, so
 *            this ENQCMD takes #GP; pasid_activated is still 1, so
 *            try_fixup_enqcmd_gp() declines and the task gets SIGSEGV.
 *
 * Needs: an x86-64 CPU with ENQCMD (Sapphire Rapids or later), an Intel DSA
 * with a *shared* work queue of type "user" enabled (accel-config:
 * config-wq --mode=shared --type=user --name=repro ..., then enable-device
 * and enable-wq), a kernel with CONFIG_INTEL_IOMMU_SVM=y and
 * CONFIG_INTEL_IDXD_SVM=y booted with intel_iommu=on,sm_on, and read/write
 * access to the queue's character device.
 *
 * Build: gcc -O2 -Wall -o repro-exec-enqcmd repro-exec-enqcmd.c
 * Run:   ./repro-exec-enqcmd /dev/dsa/wq0.0
 * Exit status: 0 both ENQCMDs completed (fixed kernel); 1 SIGSEGV at the
 * ENQCMD after exec (the bug); 2 the first ENQCMD failed too (no SVA,
 * wrong queue type: the setup, not the bug); 3 other errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PORTAL_SIZE 4096
#define DSA_OPCODE_NOOP 0u
#define DSA_FLAG_CRAV (1u << 2) /* completion record address valid */
#define DSA_FLAG_RCR (1u << 3)  /* request completion record */
#define DSA_COMP_SUCCESS 1u

/* A 64-byte DSA descriptor: PASID and privilege (ignored by ENQCMD, which
 * puts IA32_PASID there), flags and opcode, the completion record address. */
struct dsa_desc {
	uint32_t pasid_priv;
	uint32_t flags_opcode; /* flags in bits 0-23, opcode in 24-31 */
	uint64_t completion_addr;
	uint64_t rest[6];
} __attribute__((aligned(64)));

struct dsa_completion {
	volatile uint8_t status;
	uint8_t rest[31];
} __attribute__((aligned(32)));

static volatile sig_atomic_t stage;

static void on_sigsegv(int sig)
{
	static const char bug[] =
		"stage 2: SIGSEGV at ENQCMD after exec: pasid_activated survived exec (the bug)\n";
	static const char setup[] =
		"stage 1: SIGSEGV at the first ENQCMD: no PASID fixup (no SVA bind, or no ENQCMD support)\n";

	(void)sig;
	if (stage == 2) {
		if (write(STDERR_FILENO, bug, sizeof(bug) - 1) < 0)
			_exit(1);
		_exit(1);
	}
	if (write(STDERR_FILENO, setup, sizeof(setup) - 1) < 0)
		_exit(2);
	_exit(2);
}

/* ENQCMD portal, desc: F2 0F 38 F8 /r with ModRM 0x02, i.e. enqcmd (%rdx), %rax.
 * Returns nonzero when the queue did not accept the descriptor (ZF=1). */
static int enqcmd(volatile void *portal, const struct dsa_desc *desc)
{
	uint8_t retry;

	__asm__ volatile(".byte 0xf2, 0x0f, 0x38, 0xf8, 0x02\n\t"
			 "setz %0"
			 : "=r"(retry)
			 : "a"(portal), "d"(desc)
			 : "memory", "cc");
	return retry;
}

/* Open the queue, submit one NOOP with ENQCMD, wait for it, close. */
static int submit_noop(const char *wq)
{
	static struct dsa_completion comp;
	static struct dsa_desc desc;
	void *portal;
	long spins;
	int fd, tries;

	fd = open(wq, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "stage %d: open %s: %s\n", (int)stage, wq, strerror(errno));
		return 3;
	}
	portal = mmap(NULL, PORTAL_SIZE, PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (portal == MAP_FAILED) {
		fprintf(stderr, "stage %d: mmap portal: %s\n", (int)stage, strerror(errno));
		close(fd);
		return 3;
	}

	memset(&comp, 0, sizeof(comp));
	memset(&desc, 0, sizeof(desc));
	desc.flags_opcode = (DSA_OPCODE_NOOP << 24) | DSA_FLAG_CRAV | DSA_FLAG_RCR;
	desc.completion_addr = (uint64_t)(uintptr_t)&comp;

	for (tries = 0; enqcmd(portal, &desc); tries++) {
		if (tries == 1000000) {
			fprintf(stderr, "stage %d: the queue never accepted the descriptor\n", (int)stage);
			munmap(portal, PORTAL_SIZE);
			close(fd);
			return 3;
		}
	}
	for (spins = 0; comp.status == 0 && spins < 100000000L; spins++)
		__asm__ volatile("pause" ::: "memory");
	printf("stage %d: ENQCMD accepted, completion status %u\n", (int)stage, (unsigned)comp.status);

	munmap(portal, PORTAL_SIZE);
	close(fd);
	return comp.status == DSA_COMP_SUCCESS ? 0 : 3;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: %s /dev/dsa/wqX.Y\n", argv[0]);
		return 3;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigsegv;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, NULL) != 0) {
		perror("sigaction");
		return 3;
	}

	if (argc == 2) {
		char *next[] = { argv[0], argv[1], "after-exec", NULL };

		stage = 1;
		rc = submit_noop(argv[1]); /* takes the #GP fixup: pasid_activated = 1 */
		if (rc != 0)
			return rc;
		fflush(stdout);
		execv("/proc/self/exe", next);
		perror("execv /proc/self/exe");
		return 3;
	}

	stage = 2;
	rc = submit_noop(argv[1]); /* #GP again: fixed up only with the fix */
	if (rc == 0)
		printf("stage 2: ENQCMD after exec was fixed up: this kernel does not have the bug\n");
	return rc;
}
