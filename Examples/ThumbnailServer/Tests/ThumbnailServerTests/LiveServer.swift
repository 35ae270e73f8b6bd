import Dispatch
import Glibc
import Hummingbird
import ThumbnailServerCore

/// An HTTP response as the tests read it.
struct HTTPReply: Sendable {
    var status: Int
    /// Header names lowercased.
    var headers: [String: String]
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The little-endian 32-bit word at `offset` of the body.
    func word(at offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(body[offset + $1]) << (8 * $1) }
    }
}

struct HTTPClientError: Error, CustomStringConvertible {
    var description: String
}

/// Runs `service` on a free port of 127.0.0.1 while `body` runs, then stops it.
/// - Parameters:
///   - service: The service.
///   - body: Gets the port.
/// - Returns: What `body` returns.
func withLiveServer<Result: Sendable>(
    _ service: ThumbnailService, _ body: @Sendable (Int) async throws -> Result
) async throws -> Result {
    // Hummingbird logs its cancellation-driven shutdown as errors; the tests stop servers that way.
    setenv("LOG_LEVEL", "critical", 0)
    let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
    let app = ThumbnailRoutes.makeApplication(service: service, host: "127.0.0.1", port: 0) { port in
        continuation.yield(port)
        continuation.finish()
    }
    return try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask {
            try await app.run()
            return nil
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw HTTPClientError(description: "the server did not start") }
        defer { group.cancelAll() }
        return try await body(port)
    }
}

/// `GET path` on 127.0.0.1:`port` with `Connection: close`, read to the end (30 s timeout),
/// on a Dispatch thread so the blocking socket calls never hold a thread of the cooperative pool.
func httpGet(port: Int, _ path: String) async throws -> HTTPReply {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try blockingGet(port: port, path) })
        }
    }
}

private func blockingGet(port: Int, _ path: String) throws -> HTTPReply {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HTTPClientError(description: "socket: errno \(errno)") }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 30, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw HTTPClientError(description: "connect to port \(port): errno \(errno)") }
    let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
    var sent = 0
    while sent < request.count {
        let count = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else { throw HTTPClientError(description: "send: errno \(errno)") }
        sent += count
    }
    var received: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while received.count < 64 << 20 {
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count < 0 && errno == EINTR { continue }
        guard count >= 0 else { throw HTTPClientError(description: "recv: errno \(errno) (timeout?)") }
        if count == 0 { break }
        received += chunk[..<count]
    }
    let separator: [UInt8] = [13, 10, 13, 10]
    guard let end = (0..<max(0, received.count - 3)).first(where: { Array(received[$0..<$0 + 4]) == separator }) else {
        throw HTTPClientError(description: "no header end in \(received.count) bytes")
    }
    let head = String(decoding: received[..<end], as: UTF8.self).components(separatedBy: "\r\n")
    let statusParts = head[0].split(separator: " ")
    guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
        throw HTTPClientError(description: "bad status line \(head[0])")
    }
    var headers: [String: String] = [:]
    for line in head.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return HTTPReply(status: status, headers: headers, body: Array(received[(end + 4)...]))
}
