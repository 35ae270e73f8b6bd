import VolatileSystem

extension VolatileArena {
    /// Frees many extents at once: adjacent pages are coalesced into runs, each run given
    /// back to the kernel with one `madvise`, and the allocator updated under one lock.
    /// Nothing is recycled (the point is that resident memory comes back).
    /// - Parameter extents: Tokens surrendered by their owners, with the counter their pages are in.
    /// - Complexity: O(n log n) for n extents, plus one system call per run.
    func releaseCoalesced(_ extents: [(token: ExtentToken, accounting: Accounting)]) {
        guard !extents.isEmpty else { return }
        let sorted = extents.sorted {
            let left = $0.token.key
            let right = $1.token.key
            return (left.region, left.firstPage) < (right.region, right.firstPage)
        }
        var runStart = 0
        for index in 1...sorted.count {
            let previous = sorted[index - 1].token
            if index < sorted.count {
                let next = sorted[index].token
                if next.region.toOpaque() == previous.region.toOpaque() && next.firstPage == previous.firstPage + previous.pageCount {
                    continue
                }
            }
            let first = sorted[runStart].token
            let pages = previous.firstPage + previous.pageCount - first.firstPage
            releasePages(first.base, pageCount: pages)
            first.region.takeUnretainedValue().takeDropped(first: first.firstPage, count: pages) { _ in }
            runStart = index
        }
        for item in sorted { debugProtect(item.token) }
        state.withLock { state in
            for item in sorted {
                let token = item.token
                state.allocators[token.region.takeUnretainedValue().index].free(start: token.firstPage, pages: token.pageCount)
                state.forget(token, accountedAs: item.accounting)
            }
            state.shrinkTablesIfSparse()
        }
        for item in sorted { item.token.arena.release() }
    }
}
