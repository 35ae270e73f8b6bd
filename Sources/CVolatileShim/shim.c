// Intentionally empty: every function of the shim is static inline in the header.
