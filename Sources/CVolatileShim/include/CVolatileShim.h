// CVolatileShim: the few things Swift cannot import on its own.
//
// Only ioctl request numbers, userfaultfd structs, raw syscall entry points and
// C11 atomics on raw memory live here, each as a thin `static inline` function.
// No logic: error handling and policy belong to the Swift layers above.
#ifndef CVOLATILESHIM_H
#define CVOLATILESHIM_H

#ifndef __linux__
#error "VolatileCache needs Linux: it is built on MADV_FREE, userfaultfd and memory cgroups, which other systems do not have"
#endif

#include <errno.h>
#include <stdint.h>
#include <stddef.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/eventfd.h>
#include <linux/userfaultfd.h>

#ifndef MADV_FREE
#define MADV_FREE 8
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

// Advice values, exported as functions so Swift sees plain Int32 constants
// whatever the installed kernel headers spell.
static inline int32_t vc_madv_free(void) { return MADV_FREE; }
static inline int32_t vc_madv_pageout(void) { return MADV_PAGEOUT; }
static inline int32_t vc_madv_populate_write(void) { return MADV_POPULATE_WRITE; }
static inline int32_t vc_madv_dontneed(void) { return MADV_DONTNEED; }
static inline int32_t vc_madv_dontfork(void) { return MADV_DONTFORK; }
static inline int32_t vc_madv_nohugepage(void) { return MADV_NOHUGEPAGE; }
static inline int32_t vc_uffd_user_mode_only(void) { return UFFD_USER_MODE_ONLY; }

/// userfaultfd(2); returns the descriptor or -1 with errno set.
static inline int vc_userfaultfd(int flags) {
#ifdef __NR_userfaultfd
    return (int)syscall(__NR_userfaultfd, flags);
#else
    errno = ENOSYS;
    return -1;
#endif
}

/// eventfd(2), close-on-exec and non-blocking (wakes the handler thread for shutdown).
static inline int vc_eventfd_cloexec_nonblock(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

/// UFFDIO_API handshake; on success stores the granted features and ioctls.
static inline int vc_uffd_api(int fd, uint64_t features, uint64_t *granted_features, uint64_t *ioctls) {
    struct uffdio_api api = { .api = UFFD_API, .features = features };
    int r = ioctl(fd, UFFDIO_API, &api);
    if (r == 0) { *granted_features = api.features; *ioctls = api.ioctls; }
    return r;
}

/// UFFDIO_REGISTER in MISSING mode; stores the ioctls available on the range.
static inline int vc_uffd_register_missing(int fd, void *start, uint64_t len, uint64_t *ioctls) {
    struct uffdio_register reg = {
        .range = { .start = (uint64_t)(uintptr_t)start, .len = len },
        .mode = UFFDIO_REGISTER_MODE_MISSING,
    };
    int r = ioctl(fd, UFFDIO_REGISTER, &reg);
    if (r == 0) { *ioctls = reg.ioctls; }
    return r;
}

static inline int vc_uffd_unregister(int fd, void *start, uint64_t len) {
    struct uffdio_range range = { .start = (uint64_t)(uintptr_t)start, .len = len };
    return ioctl(fd, UFFDIO_UNREGISTER, &range);
}

/// UFFDIO_ZEROPAGE over [start, start+len); `mapped` receives how many bytes
/// were mapped (or a negative errno), which matters when it stops at EEXIST.
static inline int vc_uffd_zeropage(int fd, void *start, uint64_t len, int64_t *mapped) {
    struct uffdio_zeropage zp = {
        .range = { .start = (uint64_t)(uintptr_t)start, .len = len },
        .mode = 0,
    };
    int r = ioctl(fd, UFFDIO_ZEROPAGE, &zp);
    *mapped = zp.zeropage;
    return r;
}

static inline int vc_uffd_wake(int fd, void *start, uint64_t len) {
    struct uffdio_range range = { .start = (uint64_t)(uintptr_t)start, .len = len };
    return ioctl(fd, UFFDIO_WAKE, &range);
}

static inline size_t vc_uffd_msg_size(void) { return sizeof(struct uffd_msg); }

/// Decodes one message read from a userfaultfd: returns 1 and the fault
/// address for a page fault, 0 for any other event.
static inline int vc_uffd_msg_pagefault(const void *msg, uint64_t *address) {
    const struct uffd_msg *m = (const struct uffd_msg *)msg;
    if (m->event != UFFD_EVENT_PAGEFAULT) { return 0; }
    *address = m->arg.pagefault.address;
    return 1;
}

// Atomics on raw (mapped) memory. Sequentially consistent: these are the
// race-free step of the canary protocol and the drop bitmap.
// The CAS and the touch take `void *`: they work on the first word of a user's page, which
// Swift must not bind to UInt64 (the user's bytes have their own type).
static inline int vc_atomic_cas_u64(void *p, uint64_t expected, uint64_t desired) {
    return __atomic_compare_exchange_n((uint64_t *)p, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
static inline uint64_t vc_atomic_fetch_or_u64(uint64_t *p, uint64_t bits) {
    return __atomic_fetch_or(p, bits, __ATOMIC_SEQ_CST);
}
static inline uint64_t vc_atomic_fetch_and_u64(uint64_t *p, uint64_t bits) {
    return __atomic_fetch_and(p, bits, __ATOMIC_SEQ_CST);
}
static inline uint64_t vc_atomic_load_u64(const uint64_t *p) {
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}
/// A write that does not change the value: re-dirties a page (cancels MADV_FREE), in one
/// atomic instruction, so it either hits the present page or faults on an absent one.
/// Written in assembly on x86-64 because compilers turn an idempotent atomic
/// read-modify-write (fetch_add 0, fetch_or 0) into a plain load, which would not dirty.
static inline void vc_atomic_touch(void *page) {
    uint64_t *p = (uint64_t *)page;
#if defined(__x86_64__)
    __asm__ __volatile__("lock; addq $0, %0" : "+m"(*p) : : "memory", "cc");
#else
    uint64_t expected = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(p, &expected, expected, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
#endif
}

// ---- Process and pipe system calls (VolatileSystem's Syscall.pipe / pidfdOpen) ----
// Raw syscalls rather than the glibc wrappers: their declarations need _GNU_SOURCE (pipe2) or
// glibc 2.36 (pidfd_open), and the Glibc module map does not export them.
#include <spawn.h>

/// pipe2(2); returns 0 or -1 with errno set.
static inline int vc_pipe2(int fds[2], int flags) { return (int)syscall(__NR_pipe2, fds, flags); }

/// pidfd_open(2) (Linux 5.3); returns a descriptor or -1 with errno set (ENOSYS before 5.3).
static inline int vc_pidfd_open(pid_t pid, unsigned int flags) {
#ifdef __NR_pidfd_open
    return (int)syscall(__NR_pidfd_open, pid, flags);
#else
    errno = ENOSYS;
    return -1;
#endif
}

// ---- membarrier(2) (issue 8: the read path's asymmetric fence) ----
#include <linux/membarrier.h>

static inline int vc_membarrier_query(void) { return MEMBARRIER_CMD_QUERY; }
static inline int vc_membarrier_private_expedited(void) { return MEMBARRIER_CMD_PRIVATE_EXPEDITED; }
static inline int vc_membarrier_register_private_expedited(void) { return MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED; }

/// membarrier(2) (Linux 4.14 for the private expedited commands); returns the command's
/// result or -1 with errno set (ENOSYS where the kernel lacks it).
static inline int vc_membarrier(int command) {
#ifdef __NR_membarrier
    return (int)syscall(__NR_membarrier, command, 0, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34), weakly linked: returns ENOSYS where
/// the C library lacks it, so callers can fall back.
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *, int) __attribute__((weak));
static inline int vc_spawn_add_close_from(posix_spawn_file_actions_t *actions, int from) {
    if (posix_spawn_file_actions_addclosefrom_np == NULL) { return ENOSYS; }
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}
// ---- end of process and pipe system calls ----
// MARK: - Debug use-after-unpin trap (issue 12)
//
// VolatileArena's debug protection makes unpinned extents PROT_NONE; a SIGSEGV in one of the
// ranges registered here prints "access to an unpinned VolatileCache object" and the address
// (write(2) only: async-signal-safe), restores the previous disposition and returns, so the
// fault repeats and the process dies the way it would have (default action or the runtime's
// backtracer). Defined in shim.c: the handler's table must exist once per process.

/// Installs the handler (SA_SIGINFO | SA_ONSTACK; gives the calling thread an alternate
/// stack if it has none). Idempotent. Returns 0, or -1 with errno set.
int vc_debug_trap_install(void);
/// Adds [base, base + length) to the ranges the handler reports. Returns 0, or -1 when the
/// table is full (faults there then die without the message).
int vc_debug_trap_register(const void *base, size_t length);
/// Removes the range starting at base (before it is unmapped).
void vc_debug_trap_unregister(const void *base);
// ===== issue 8 (scaling): the calling thread's read-epoch slot =====
// One pointer per thread (`_Thread_local`, defined once in shim.c): the address of the
// thread's epoch slot in VolatileCache's registry, or NULL before its first hot read.
extern _Thread_local void *vc_epoch_slot;
static inline void *vc_epoch_slot_get(void) { return vc_epoch_slot; }
static inline void vc_epoch_slot_set(void *slot) { vc_epoch_slot = slot; }
// ===== end issue 8 =====


// ---- Thread CPU affinity (drop injection drains other CPUs' LRU batches) ----
// Raw syscalls with a 1024-CPU mask (16 words): the glibc CPU_SET macros need _GNU_SOURCE.

/// sched_getaffinity(2) for the calling thread; returns the mask size in bytes or -1.
static inline int vc_thread_affinity_get(uint64_t *mask16) {
    return (int)syscall(__NR_sched_getaffinity, 0, 16 * sizeof(uint64_t), mask16);
}
/// sched_setaffinity(2) for the calling thread; returns 0 or -1 with errno set.
static inline int vc_thread_affinity_set(const uint64_t *mask16) {
    return (int)syscall(__NR_sched_setaffinity, 0, 16 * sizeof(uint64_t), mask16);
}
// ---- end of thread CPU affinity ----

// ---- heap trim (issue 14: small objects' removeAll gives freed heap back) ----
#include <malloc.h>
static inline int vc_malloc_trim(void) { return malloc_trim(0); }
// ---- end of heap trim ----

#endif
