// The package rests on Linux-only kernel interfaces: MADV_FREE (4.5, swapless reclaim 4.12),
// userfaultfd, MADV_POPULATE_WRITE, memory cgroups and PSI. Stop early and say so, instead of
// a page of unknown identifiers. (The C shim has the same check for its own compile.)
#if !os(Linux)
#error("VolatileCache needs Linux: it is built on MADV_FREE, userfaultfd and memory cgroups, which other systems do not have")
#endif
