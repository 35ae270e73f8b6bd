// Intrusive doubly linked queues over one node array, with a key → slot index: what the LRU
// and W-TinyLFU orderings are made of. Slots are recycled; links are array indices, so the
// structure is a value type with no per-node allocation.

/// Recency queues of weighted keys. The front of a queue is its least recently used end.
package struct PolicyQueues<Key: Hashable>: Sendable where Key: Sendable {
    /// One resident key.
    package struct Node: Sendable {
        package var key: Key
        package var hash: UInt64
        package var weight: Int
        package var queue: Int
        var previous = -1
        var next = -1
    }

    /// One queue's ends and totals.
    package struct Queue: Sendable {
        var head = -1
        var tail = -1
        package var weight = 0
        package var count = 0
    }

    private(set) var nodes: [Node] = []
    private var freeSlots: [Int] = []
    private var slots: [Key: Int] = [:]
    /// The queues, by number.
    package private(set) var queues: [Queue]

    /// Creates `count` empty queues.
    package init(count: Int) {
        queues = [Queue](repeating: Queue(), count: count)
    }

    /// Keys resident in any queue.
    package var count: Int { slots.count }

    /// The slot of `key`, if resident.
    package func slot(of key: Key) -> Int? { slots[key] }

    /// The node in `slot`.
    package subscript(slot: Int) -> Node { nodes[slot] }

    /// The least recently used slot of `queue`.
    package func front(_ queue: Int) -> Int? { queues[queue].head >= 0 ? queues[queue].head : nil }

    /// The slot after `slot` (towards the most recently used end) in its queue.
    package func next(after slot: Int) -> Int? { nodes[slot].next >= 0 ? nodes[slot].next : nil }

    /// Adds `key` at the back (most recently used end) of `queue`.
    /// - Returns: Its slot.
    @discardableResult
    package mutating func append(_ key: Key, hash: UInt64, weight: Int, to queue: Int) -> Int {
        precondition(slots[key] == nil, "key already resident")
        let node = Node(key: key, hash: hash, weight: weight, queue: queue)
        let slot: Int
        if let free = freeSlots.popLast() {
            nodes[free] = node
            slot = free
        } else {
            nodes.append(node)
            slot = nodes.count - 1
        }
        slots[key] = slot
        link(slot, atBackOf: queue)
        return slot
    }

    /// Removes the node in `slot`.
    /// - Returns: The node.
    @discardableResult
    package mutating func remove(_ slot: Int) -> Node {
        unlink(slot)
        let node = nodes[slot]
        slots[node.key] = nil
        freeSlots.append(slot)
        return node
    }

    /// Moves the node in `slot` to the back of `queue` (possibly its own).
    package mutating func moveToBack(_ slot: Int, of queue: Int) {
        unlink(slot)
        link(slot, atBackOf: queue)
    }

    /// Slots of `queue` from front to back.
    package func slots(in queue: Int) -> [Int] {
        var result: [Int] = []
        result.reserveCapacity(queues[queue].count)
        var cursor = queues[queue].head
        while cursor >= 0 {
            result.append(cursor)
            cursor = nodes[cursor].next
        }
        return result
    }

    private mutating func link(_ slot: Int, atBackOf queue: Int) {
        nodes[slot].queue = queue
        nodes[slot].next = -1
        nodes[slot].previous = queues[queue].tail
        if queues[queue].tail >= 0 { nodes[queues[queue].tail].next = slot } else { queues[queue].head = slot }
        queues[queue].tail = slot
        queues[queue].weight += nodes[slot].weight
        queues[queue].count += 1
    }

    private mutating func unlink(_ slot: Int) {
        let node = nodes[slot]
        if node.previous >= 0 { nodes[node.previous].next = node.next } else { queues[node.queue].head = node.next }
        if node.next >= 0 { nodes[node.next].previous = node.previous } else { queues[node.queue].tail = node.previous }
        queues[node.queue].weight -= node.weight
        queues[node.queue].count -= 1
        nodes[slot].previous = -1
        nodes[slot].next = -1
    }
}
