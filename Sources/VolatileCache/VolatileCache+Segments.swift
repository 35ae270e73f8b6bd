import VolatileMemory

// The adaptive policy's segments (W-TinyLFU, as Caffeine lays it out; the design is Einziger,
// Friedman and Manes, "TinyLFU", and Caffeine's BoundedLocalCache), over the whole resident set
// (hot and volatile entries):
//
//   install ─► window (1 %) ─overflow─► candidates ─TinyLFU─► probation ─hit─► protected (80 % of main)
//                                          │ loses          (main 99 %)  ◄─overflow─┘
//                                          ▼                     │ victim
//                                       evicted               evicted
//
// - A new entry enters the window: a burst of accesses to a new key is served.
// - When the window is over 1 % of the resident weight, its oldest entry becomes a candidate.
//   Under the count or cost limit (or the learned resident capacity) the oldest candidate is
//   compared with the oldest probation entry and the oldest protected one, the one of those two
//   worth less per unit of weight: the candidate gets in only if its recent accesses per unit of
//   weight are strictly more (ties keep the incumbent), else it is evicted. So a one-time sweep
//   of new keys is turned away at the door, and the sketch's halving lets a moving popular set in.
// - Probation entries accessed again are promoted to protected; protected is kept at 80 % of the
//   main space, its oldest going back to probation.
//
// Hits do not move entries (a hit only writes its read buffer). Each segment is a per-shard FIFO
// of entries in the order they took their place; an entry accessed since (its stamp, replayed by
// the drains, is newer than its `segmentStamp`) is moved when it reaches the front: window and
// protected give it a second chance at their back (CLOCK, close to LRU), probation promotes it.
// Decisions take the fronts of every shard under `maintenance` and compare them by
// `segmentStamp`, a clock value at least the global epoch, so they compare across shards.
//
// Weights: cost under a cost limit, else bytes (whole pages).

/// Where an entry is in the adaptive policy's segments.
enum PolicySegment: UInt8 {
    /// Not placed (loading, or the LRU policy).
    case none
    /// Admission window: the newest entries.
    case window
    /// Out of the window, waiting for TinyLFU's comparison with a victim of the main space.
    case candidate
    /// Main space, not accessed since it got there.
    case probation
    /// Main space, accessed again while in probation.
    case protected

    /// Demotion (hot set) and shed order: probation and candidates first, protected last.
    var demotionRank: Int {
        switch self {
        case .none, .candidate, .probation: return 0
        case .window: return 1
        case .protected: return 2
        }
    }
}

/// A FIFO of one segment's entries in one shard, linked through ``CacheEntry/segmentLinks``.
struct SegmentList<Key: Hashable & Sendable> {
    private(set) var entries = LinkedEntries<Key>(.segment)
    var newest: CacheEntry<Key>? { entries.newest }
    var oldest: CacheEntry<Key>? { entries.oldest }
    var count: Int { entries.count }
    /// Summed ``CacheEntry/segmentWeight``.
    var weight = 0

    mutating func append(_ entry: CacheEntry<Key>) {
        entries.pushNewest(entry)
        weight += entry.segmentWeight
    }

    mutating func remove(_ entry: CacheEntry<Key>) {
        entries.remove(entry)
        weight -= entry.segmentWeight
    }

    /// The keys, oldest first (for tests).
    var keys: [Key] { entries.keys(newestFirst: false) }
}

/// A shard's segments (adaptive only).
struct ShardSegments<Key: Hashable & Sendable> {
    /// Whether entries are placed at all (false under LRU).
    var isEnabled = false
    /// Whether weights are costs (a cost limit is set) rather than bytes.
    var usesCost = false
    /// The segments' FIFOs, oldest first.
    var window = SegmentList<Key>()
    var candidates = SegmentList<Key>()
    var probation = SegmentList<Key>()
    var protected = SegmentList<Key>()

    subscript(segment: PolicySegment) -> SegmentList<Key> {
        get {
            switch segment {
            case .window: return window
            case .candidate: return candidates
            case .probation: return probation
            case .protected: return protected
            case .none: return SegmentList()
            }
        }
        set {
            switch segment {
            case .window: window = newValue
            case .candidate: candidates = newValue
            case .probation: probation = newValue
            case .protected: protected = newValue
            case .none: break
            }
        }
    }

    var totalWeight: Int { window.weight + candidates.weight + probation.weight + protected.weight }
}

extension ShardState {
    /// Puts a just installed entry in the window (a new one), or updates the weight its segment
    /// counts (a regenerated one keeps its place). Called by ``CacheEntry/install``.
    mutating func placeInSegment(_ entry: CacheEntry<Key>) {
        guard segments.isEnabled else { return }
        let weight = segments.usesCost ? max(entry.cost, 1) : max(entry.footprint, 1)
        if entry.segment == .none {
            entry.segment = .window
            entry.segmentWeight = weight
            entry.segmentStamp = entry.stamp
            segments.window.append(entry)
        } else if weight != entry.segmentWeight {
            segments[entry.segment].weight += weight - entry.segmentWeight
            entry.segmentWeight = weight
        }
    }

    /// Takes a removed entry out of its segment. Called by ``CacheEntry/detach``.
    mutating func removeFromSegment(_ entry: CacheEntry<Key>) {
        guard entry.segment != .none else { return }
        segments[entry.segment].remove(entry)
        entry.segment = .none
    }

    /// Moves `entry` to the back of `segment`, as of clock value `now`.
    mutating func move(_ entry: CacheEntry<Key>, to segment: PolicySegment, now: UInt64) {
        guard entry.segment != .none else { return }
        segments[entry.segment].remove(entry)
        entry.segment = segment
        entry.segmentStamp = Swift.max(now, entry.stamp)
        entry.segmentCredit = 0
        segments[segment].append(entry)
    }

    /// A clock value no access of this shard from now on can be stamped with (stamps are
    /// `max(clock, epoch) + 1`), and comparable across shards (at least the epoch).
    func segmentClock(epoch: EpochPointer) -> UInt64 {
        Swift.max(recency.clock, epoch.load())
    }

    /// Applies the accesses replayed since the entries were placed: a window or protected front
    /// accessed since goes to the back of its segment (a second chance), and the entries of the
    /// first `probationDepth` of probation accessed since are promoted to protected (deeper
    /// ones when they get there: until then they are not victims anyway). Bounded per call.
    mutating func settleSegmentFronts(epoch: EpochPointer, probationDepth: Int = 16) {
        guard segments.isEnabled else { return }
        let now = segmentClock(epoch: epoch)
        var moves = 0
        while let front = segments.window.oldest, front.stamp > front.segmentStamp, moves < 64 {
            move(front, to: .window, now: now)
            moves += 1
        }
        var cursor = segments.probation.oldest
        var depth = 0
        while let entry = cursor, depth < probationDepth {
            cursor = entry.segmentNewer
            depth += 1
            if entry.stamp > entry.segmentStamp { move(entry, to: .protected, now: now) }
        }
        moves = 0
        while let front = segments.protected.oldest, front.stamp > front.segmentStamp, moves < 64 {
            move(front, to: .protected, now: now)
            moves += 1
        }
    }
}

/// What one pass over the shards saw: segment totals and each segment's front.
struct SegmentView<Key: Hashable & Sendable> {
    var window = 0, candidates = 0, probation = 0, protected = 0
    /// The oldest entry of the window and of the candidates across shards (by `segmentStamp`).
    var windowFront: PolicyCandidate<Key>?
    /// Its weight in the segments' unit.
    var windowFrontWeight = 0
    var candidateFront: PolicyCandidate<Key>?
    /// The oldest entries of probation and of protected that may be evicted, a few per
    /// shard, oldest first.
    var probationFronts: [PolicyCandidate<Key>] = []
    var protectedFronts: [PolicyCandidate<Key>] = []
    /// The oldest protected entry, evictable or not (protected's overflow demotes it).
    var protectedOldest: PolicyCandidate<Key>?

    var total: Int { window + candidates + probation + protected }

    static func older(_ lhs: PolicyCandidate<Key>?, _ rhs: PolicyCandidate<Key>) -> PolicyCandidate<Key> {
        guard let lhs else { return rhs }
        return rhs.stamp < lhs.stamp ? rhs : lhs
    }
}

extension VolatileCache {
    /// Locks each shard once: replays its read buffers, settles its segment fronts, and adds
    /// its totals and fronts to the view.
    private func viewSegments(unpinnedOnly: Bool, weight: PolicyWeight) -> SegmentView<Key> {
        let epoch = shards.epoch
        var view = SegmentView<Key>()
        for index in shards.indices {
            let shard = shards[index]
            shard.pointee.state.withLock { state in
                shard.drain(stripe: nil, in: &state, epoch: epoch)
                state.settleSegmentFronts(epoch: epoch)
                view.window += state.segments.window.weight
                view.candidates += state.segments.candidates.weight
                view.probation += state.segments.probation.weight
                view.protected += state.segments.protected.weight
                func weighed(_ entry: CacheEntry<Key>) -> PolicyCandidate<Key> {
                    PolicyCandidate(
                        shard: shard, entry: entry, stamp: entry.segmentStamp,
                        frequency: state.recency.frequency(hash: HashedKey(entry.key).hash), weight: weight.of(entry))
                }
                func evictable(_ list: SegmentList<Key>, count: Int, into fronts: inout [PolicyCandidate<Key>]) {
                    var cursor = list.oldest
                    var steps = 0, found = 0
                    while let entry = cursor, steps < 16, found < count {
                        if entry.list != .none && (!unpinnedOnly || entry.holds.load(ordering: .acquiring) == 0) {
                            fronts.append(weighed(entry))
                            found += 1
                        }
                        cursor = entry.segmentNewer
                        steps += 1
                    }
                }
                if let entry = state.segments.window.oldest, view.windowFront.map({ entry.segmentStamp < $0.stamp }) ?? true {
                    view.windowFront = weighed(entry)
                    view.windowFrontWeight = entry.segmentWeight
                }
                if let entry = state.segments.candidates.oldest {
                    view.candidateFront = SegmentView.older(view.candidateFront, weighed(entry))
                }
                evictable(state.segments.probation, count: 4, into: &view.probationFronts)
                evictable(state.segments.protected, count: 4, into: &view.protectedFronts)
                if let entry = state.segments.protected.oldest {
                    view.protectedOldest = SegmentView.older(view.protectedOldest, weighed(entry))
                }
            }
        }
        view.probationFronts.sort { $0.stamp < $1.stamp }
        view.protectedFronts.sort { $0.stamp < $1.stamp }
        return view
    }

    /// Moves `entry` to the back of `segment` if it is still where the view saw it.
    /// - Returns: The weight moved (0 if it was not there any more).
    @discardableResult
    private func move(_ seen: PolicyCandidate<Key>, from segment: PolicySegment, to target: PolicySegment) -> Int {
        let epoch = shards.epoch
        return seen.shard.pointee.state.withLock { state in
            guard seen.entry.segment == segment, !seen.entry.isRemoved else { return 0 }
            state.move(seen.entry, to: target, now: state.segmentClock(epoch: epoch))
            return seen.entry.segmentWeight
        }
    }

    /// Moves each shard's oldest window entries to probation until its window weight is at
    /// most `keeping`.
    private func spillWindow(keeping: Int) {
        let epoch = shards.epoch
        for index in shards.indices {
            let shard = shards[index]
            shard.pointee.state.withLock { state in
                let now = state.segmentClock(epoch: epoch)
                while state.segments.window.weight > keeping, let front = state.segments.window.oldest {
                    state.move(front, to: .probation, now: now)
                }
            }
        }
    }

    /// Evicts `seen` if it may still go (see `evict(_:in:unpinnedOnly:into:)`).
    /// - Returns: Its bytes, or nil if it changed under us.
    private func evict(_ seen: PolicyCandidate<Key>, unpinnedOnly: Bool, into garbage: inout Garbage) -> Int? {
        evict(seen.entry, in: seen.shard, unpinnedOnly: unpinnedOnly, into: &garbage)
    }

    /// One step of W-TinyLFU's eviction (adaptive only; the caller holds `maintenance`):
    /// rebalances the segments, then evicts either the oldest candidate (it lost TinyLFU's
    /// comparison) or the main-space victim it beat.
    /// - Parameters:
    ///   - unpinnedOnly: Only unheld entries may go.
    ///   - weight: How value per unit of weight is measured.
    ///   - excess: How much weight is over the limit (nil: a candidate makes room for itself).
    /// - Returns: The bytes evicted, or nil when no entry may be evicted.
    /// - Complexity: O(shards) per rebalancing move, a few moves per eviction.
    func evictBySegments(unpinnedOnly: Bool, weight: PolicyWeight, excess: Int?, into garbage: inout Garbage) -> Int? {
        for _ in 0..<64 {
            let view = viewSegments(unpinnedOnly: unpinnedOnly, weight: weight)
            let windowCapacity = view.total / 100
            if view.window > 2 * windowCapacity + view.windowFrontWeight {
                // Far over (the cache filled up before anything had to go): all but the
                // window's share of every shard joins probation at once, unjudged, as in
                // Caffeine, where only the entries that leave the window while the cache is
                // full are compared.
                spillWindow(keeping: windowCapacity / shards.count)
                continue
            }
            var candidateFront = view.candidateFront
            if view.window > windowCapacity, let front = view.windowFront {
                // Only the last entry to leave the window becomes a candidate, the earlier ones
                // (the window was over by more than one entry) join probation unjudged.
                let isLast = view.window - view.windowFrontWeight <= windowCapacity
                guard move(front, from: .window, to: isLast ? .candidate : .probation) > 0, isLast else { continue }
                if candidateFront == nil { candidateFront = front }
            }
            let protectedCapacity = (view.total - view.window - view.candidates) / 5 * 4
            if view.protected > protectedCapacity, let oldest = view.protectedOldest {
                // Protected's overflow goes back to probation, oldest first (all of it at once:
                // promotions settled in this pass may have added several).
                var overflow = view.protected - protectedCapacity
                for seen in [oldest] + view.protectedFronts where overflow > 0 {
                    overflow -= move(seen, from: .protected, to: .probation)
                }
                // The victims below may include them: they are in probation now, still oldest.
            }
            guard let candidate = candidateFront else {
                // No candidate: the oldest probation entry goes (then protected's).
                if let victim = view.probationFronts.first ?? view.protectedFronts.first {
                    if let bytes = evict(victim, unpinnedOnly: unpinnedOnly, into: &garbage) { return bytes }
                    continue
                }
                // Only the window is left: its oldest must earn its place like any candidate.
                guard let front = view.windowFront else { return nil }
                move(front, from: .window, to: .candidate)
                continue
            }
            let victims = Self.victims(for: candidate, needed: min(excess ?? .max, candidate.weight), in: view)
            if victims.isEmpty {
                // The main space has room (or nothing in it may go): the candidate joins
                // probation, where the next candidate meets it as a victim.
                move(candidate, from: .candidate, to: .probation)
                continue
            }
            // TinyLFU: the candidate must be worth strictly more per unit of weight than the
            // victims taken together (ties keep the incumbents).
            var victimFrequency = 0, victimWeight = 0
            for victim in victims {
                victimFrequency += victim.frequency
                victimWeight += victim.weight
            }
            let admitted = Double(candidate.frequency) * Double(victimWeight) > Double(victimFrequency) * Double(candidate.weight)
            guard admitted else {
                if let bytes = evict(candidate, unpinnedOnly: unpinnedOnly, into: &garbage) { return bytes }
                // Held: it stays, in probation.
                move(candidate, from: .candidate, to: .probation)
                continue
            }
            var evicted: Int? = nil
            var freed = 0
            for victim in victims {
                if let bytes = evict(victim, unpinnedOnly: unpinnedOnly, into: &garbage) {
                    evicted = (evicted ?? 0) + bytes
                    freed += victim.weight
                }
            }
            // Admitted once the victims it beat make room for it.
            candidate.shard.pointee.state.withLock { state in
                let entry = candidate.entry
                guard entry.segment == .candidate, !entry.isRemoved else { return }
                entry.segmentCredit += freed
                if entry.segmentCredit >= min(excess ?? .max, candidate.weight) {
                    state.move(entry, to: .probation, now: state.segmentClock(epoch: shards.epoch))
                }
            }
            if let evicted { return evicted }
        }
        return nil
    }

    /// TinyLFU's victims for `candidate`: a sample of the oldest probation entry and the oldest
    /// protected one, topped up from protected then probation (oldest first) until it could
    /// free `needed`, then the lowest value per unit of weight first until they free it (at
    /// most 16). Protected is sampled too: without it, a large entry accessed twice would stay
    /// there for good however little it is worth per byte.
    static func victims(for candidate: PolicyCandidate<Key>, needed: Int, in view: SegmentView<Key>) -> [PolicyCandidate<Key>] {
        var sample: [PolicyCandidate<Key>] = []
        var sampled = 0
        var probation = view.probationFronts[...], protected = view.protectedFronts[...]
        // One of each (a wider sample is LFU over noisy 4-bit counts again: measured 93 %
        // of the optimum instead of 96-97 % on Zipf 1.0, and no better with sizes).
        for next in [probation.popFirst(), protected.popFirst()].compactMap({ $0 }) {
            sample.append(next)
            sampled += next.weight
        }
        while sampled < needed, sample.count < 16, let next = protected.popFirst() ?? probation.popFirst() {
            sample.append(next)
            sampled += next.weight
        }
        sample.sort { $0.isWorthLess(than: $1) }
        var victims: [PolicyCandidate<Key>] = []
        var freed = 0
        for victim in sample where freed < needed {
            victims.append(victim)
            freed += victim.weight
        }
        return victims
    }

    /// Segment keys of every shard, oldest first in each (for tests).
    package var segmentKeys: (window: [Key], candidates: [Key], probation: [Key], protected: [Key]) {
        var result: (window: [Key], candidates: [Key], probation: [Key], protected: [Key]) = ([], [], [], [])
        for index in shards.indices {
            let shard = shards[index]
            shard.pointee.state.withLock { state in
                result.window += state.segments.window.keys
                result.candidates += state.segments.candidates.keys
                result.probation += state.segments.probation.keys
                result.protected += state.segments.protected.keys
            }
        }
        return result
    }
}
