// Finds the calling process's memory cgroup: the v1 memory hierarchy's folder and the v2
// (unified) folder, from /proc/self/cgroup and /proc/self/mountinfo. Used by the pressure
// monitor and the testing module's sandbox.

/// Where the calling process sits in the cgroup hierarchies that matter for memory.
package struct ControlGroupLocation: Sendable, Equatable {
    /// Folder of the process's cgroup in the v1 memory hierarchy, if one is mounted.
    package var v1Memory: String?
    /// Folder of the process's cgroup in the v2 (unified) hierarchy, if one is mounted.
    package var v2: String?

    package init(v1Memory: String?, v2: String?) {
        self.v1Memory = v1Memory
        self.v2 = v2
    }

    /// The location of the calling process, or both `nil` where the files cannot be read.
    package static func current() -> ControlGroupLocation {
        let cgroups = (try? Syscall.readText("/proc/self/cgroup").get()) ?? ""
        let mounts = (try? Syscall.readText("/proc/self/mountinfo").get()) ?? ""
        return parse(procSelfCGroup: cgroups, mountInfo: mounts)
    }

    /// Parses the two proc files (separated out so tests can feed in other machines' files).
    package static func parse(procSelfCGroup: String, mountInfo: String) -> ControlGroupLocation {
        var v1Path: String?
        var v2Path: String?
        for line in procSelfCGroup.split(separator: "\n") {
            // "hierarchy-id:controller-list:path"; the path may itself contain ':'.
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if fields[0] == "0" && fields[1].isEmpty {
                v2Path = String(fields[2])
            } else if fields[1].split(separator: ",").contains("memory") {
                v1Path = String(fields[2])
            }
        }
        var v1Mount: (root: String, point: String)?
        var v2Mount: (root: String, point: String)?
        for line in mountInfo.split(separator: "\n") {
            // "id parent major:minor root mount-point options [optional...] - fstype source super-options"
            let halves = line.split(separator: " - ", maxSplits: 1)
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " ")
            let right = halves[1].split(separator: " ")
            guard left.count >= 5, right.count >= 3 else { continue }
            let mount = (root: unescape(left[3]), point: unescape(left[4]))
            if right[0] == "cgroup2" && v2Mount == nil {
                v2Mount = mount
            } else if right[0] == "cgroup" && right[2].split(separator: ",").contains("memory") {
                v1Mount = mount
            }
        }
        return ControlGroupLocation(
            v1Memory: join(v1Mount, v1Path),
            v2: join(v2Mount, v2Path)
        )
    }

    private static func join(_ mount: (root: String, point: String)?, _ path: String?) -> String? {
        guard let mount, var path else { return nil }
        // Inside a cgroup namespace the mount root is "/" and paths are relative to it; outside
        // one, a bind mount of a sub-folder has that folder as its root.
        if mount.root != "/" && path.hasPrefix(mount.root) {
            path = String(path.dropFirst(mount.root.count))
        }
        if path.hasPrefix("/..") { return nil }  // our cgroup is outside what is mounted
        if path == "/" || path.isEmpty { return mount.point }
        return mount.point + (path.hasPrefix("/") ? path : "/" + path)
    }

    // mountinfo escapes space, tab, newline and backslash as \ooo octal.
    private static func unescape(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "\\"), utf8.count >= 3,
               let value = UInt8(String(decoding: utf8.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                utf8 = utf8.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
