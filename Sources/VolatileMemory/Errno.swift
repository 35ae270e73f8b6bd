public import VolatileSystem

/// An error number reported by the kernel, with a readable name.
///
/// The package's one errno type, defined in its system-call layer and carried by every error
/// that comes from the kernel (``VolatileMemoryError``, the cache's pressure monitor, the testing
/// module's sandbox). Named here so that `import VolatileMemory` is enough to use it.
public typealias Errno = VolatileSystem.Errno
