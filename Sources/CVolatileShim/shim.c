// Every function of the shim is static inline in the header; only thread-local storage
// needs one definition.
#include "CVolatileShim.h"

// issue 8 (scaling): the calling thread's read-epoch slot (see the header).
_Thread_local void *vc_epoch_slot = 0;
