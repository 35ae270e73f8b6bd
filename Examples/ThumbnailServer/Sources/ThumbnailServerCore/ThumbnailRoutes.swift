public import Hummingbird

/// The router: the thumbnail route, `/stats` and `/metrics`, behind a middleware that counts
/// responses by status class.
public enum ThumbnailRoutes {
    /// Builds the router for `service`.
    /// - Parameter service: The service.
    /// - Returns: The router.
    public static func makeRouter(service: ThumbnailService) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: RequestCountingMiddleware(counters: service.requests))
        router.get("photos/:name/:size") { _, context in
            // The router matched both parameters, so they are present.
            let name = context.parameters.get("name") ?? ""
            let size = context.parameters.get("size") ?? ""
            return await service.thumbnailResponse(name: Substring(name), size: Substring(size))
        }
        router.get("stats") { _, _ in
            service.statistics()
        }
        router.get("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: service.prometheusText())))
        }
        return router
    }

    /// The application: the router on `host:port`, HTTP/1.1.
    /// - Parameters:
    ///   - service: The service.
    ///   - host: The address to listen on.
    ///   - port: The port (0 for any).
    ///   - onServerRunning: Called with the bound port once the server accepts connections.
    /// - Returns: The application; run it with `runService()`.
    public static func makeApplication(
        service: ThumbnailService, host: String, port: Int,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: makeRouter(service: service),
            configuration: .init(address: .hostname(host, port: port), serverName: "thumbnail-server"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) })
    }
}

/// Counts every response by status class, including the errors the router throws (404 for an
/// unknown path).
struct RequestCountingMiddleware<Context: RequestContext>: RouterMiddleware {
    let counters: RequestCounters

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            counters.count(response.status)
            return response
        } catch let error as any HTTPResponseError {
            counters.count(error.status)
            throw error
        } catch {
            counters.count(.internalServerError)
            throw error
        }
    }
}
