// Every function of the shim is static inline in the header, except the debug trap's signal
// handler below: its table of ranges must exist once per process, not once per importer.
#define _GNU_SOURCE
#include "CVolatileShim.h"
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#define VC_TRAP_SLOTS 1024

// Ranges the handler reports: a slot is free when its base is 0. Written under the mutex,
// read by the handler with atomic loads (no lock in a signal handler).
static uintptr_t vc_trap_base[VC_TRAP_SLOTS];
static uintptr_t vc_trap_end[VC_TRAP_SLOTS];
static pthread_mutex_t vc_trap_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction vc_trap_previous;
static int vc_trap_installed;

static void vc_trap_write(const char *text, size_t length) {
    while (length > 0) {
        ssize_t written = write(2, text, length);
        if (written < 0 && errno == EINTR) { continue; }
        if (written <= 0) { return; }
        text += written;
        length -= (size_t)written;
    }
}

static void vc_trap_handler(int signal, siginfo_t *info, void *context) {
    (void)context;
    int saved = errno;
    uintptr_t address = (uintptr_t)info->si_addr;
    for (int index = 0; index < VC_TRAP_SLOTS; index++) {
        uintptr_t base = __atomic_load_n(&vc_trap_base[index], __ATOMIC_ACQUIRE);
        if (base == 0 || address < base || address >= __atomic_load_n(&vc_trap_end[index], __ATOMIC_RELAXED)) { continue; }
        static const char prefix[] = "VolatileCache: access to an unpinned VolatileCache object at 0x";
        static const char suffix[] = " (a pointer escaped its body or outlived its pin)\n";
        char hex[16];
        for (int digit = 0; digit < 16; digit++) { hex[digit] = "0123456789abcdef"[(address >> (60 - 4 * digit)) & 0xf]; }
        vc_trap_write(prefix, sizeof prefix - 1);
        vc_trap_write(hex, sizeof hex);
        vc_trap_write(suffix, sizeof suffix - 1);
        break;
    }
    // Hand the fault on: the faulting instruction runs again under the previous disposition.
    sigaction(SIGSEGV, &vc_trap_previous, NULL);
    if (info->si_code <= 0) { raise(signal); }  // sent with kill(2): nothing will repeat it
    errno = saved;
}

int vc_debug_trap_install(void) {
    pthread_mutex_lock(&vc_trap_mutex);
    int result = 0;
    if (!vc_trap_installed) {
        stack_t current;
        if (sigaltstack(NULL, &current) == 0 && (current.ss_flags & SS_DISABLE)) {
            size_t size = 64 * 1024;
            stack_t alternate = { .ss_sp = malloc(size), .ss_flags = 0, .ss_size = size };
            if (alternate.ss_sp != NULL) { sigaltstack(&alternate, NULL); }  // kept for the thread's life
        }
        struct sigaction action = { 0 };
        action.sa_sigaction = vc_trap_handler;
        action.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&action.sa_mask);
        result = sigaction(SIGSEGV, &action, &vc_trap_previous);
        if (result == 0) { vc_trap_installed = 1; }
    }
    pthread_mutex_unlock(&vc_trap_mutex);
    return result;
}

int vc_debug_trap_register(const void *base, size_t length) {
    pthread_mutex_lock(&vc_trap_mutex);
    int result = -1;
    for (int index = 0; index < VC_TRAP_SLOTS; index++) {
        if (vc_trap_base[index] != 0) { continue; }
        __atomic_store_n(&vc_trap_end[index], (uintptr_t)base + length, __ATOMIC_RELAXED);
        __atomic_store_n(&vc_trap_base[index], (uintptr_t)base, __ATOMIC_RELEASE);
        result = 0;
        break;
    }
    pthread_mutex_unlock(&vc_trap_mutex);
    return result;
}

void vc_debug_trap_unregister(const void *base) {
    pthread_mutex_lock(&vc_trap_mutex);
    for (int index = 0; index < VC_TRAP_SLOTS; index++) {
        if (vc_trap_base[index] == (uintptr_t)base) { __atomic_store_n(&vc_trap_base[index], 0, __ATOMIC_RELEASE); }
    }
    pthread_mutex_unlock(&vc_trap_mutex);
}
// Every function of the shim is static inline in the header; only thread-local storage
// needs one definition.
#include "CVolatileShim.h"

// issue 8 (scaling): the calling thread's read-epoch slot (see the header).
_Thread_local void *vc_epoch_slot = 0;
