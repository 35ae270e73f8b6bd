/// An extent's token with the duty to free it: the one owner behind ``PinnedExtent`` and
/// ``VolatileExtent``. Dropping it gives the extent back to its arena, under the counter its
/// pages are in; ``surrender()`` hands the token on instead (to a new owner, or to a bulk release).
struct ExtentOwnership: ~Copyable {
    let token: ExtentToken
    /// The counter the extent's pages are in.
    let accounting: VolatileArena.Accounting

    /// Pages currently resident, from mincore; 0 if mincore fails.
    func residentPageCount() -> Int {
        token.arena.takeUnretainedValue().residentPageCount(token)
    }

    /// Gives up ownership without freeing.
    consuming func surrender() -> ExtentToken {
        let token = self.token
        discard self
        return token
    }

    deinit {
        token.arena.takeUnretainedValue().releaseExtent(token, accountedAs: accounting)
        token.arena.release()
    }
}
