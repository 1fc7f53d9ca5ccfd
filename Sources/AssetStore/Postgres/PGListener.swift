internal import CLibPQ
import Foundation
import Synchronization

/// The one connection per process that LISTENs on `assetd_uploads` and evicts what the
/// notifications name from the `UploadCache`, on a thread of its own.
///
/// It connects directly (or through PgBouncer in session mode only: transaction mode
/// would hand LISTEN's session to other clients and the notifications would never come).
/// Whenever the connection is lost or cannot be made, the cache is cleared and serves
/// nothing until a new connection LISTENs; then it is cleared once more, since any
/// notification sent meanwhile is lost. A silent network loss is found within bounded
/// time: TCP keepalives and `tcp_user_timeout` (PGPool's parameters), and a `SELECT 1`
/// after `heartbeat` without traffic.
final class PGUploadListener: Sendable {
    struct Settings: Sendable {
        var heartbeat: Duration = .seconds(5)
        var retry: Duration = .seconds(1)
    }

    private let parameters: [(String, String)]
    private let cache: UploadCache
    private let settings: Settings
    private let stopped = Atomic<Bool>(false)
    /// The listening backend's pid while connected (tests terminate it), 0 otherwise.
    private let pid = Atomic<Int32>(0)

    init(parameters: [(String, String)], cache: UploadCache, settings: Settings = Settings()) {
        self.parameters = parameters
        self.cache = cache
        self.settings = settings
    }

    var backendPID: Int32 { pid.load(ordering: .acquiring) }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "assetd-pg-listener"
        thread.start()
    }

    /// Ends the thread within one poll interval; the cache stops serving at once.
    func stop() {
        stopped.store(true, ordering: .releasing)
        cache.setLive(false)
    }

    private var isStopped: Bool { stopped.load(ordering: .acquiring) }

    private func run() {
        var failures = 0
        while !isStopped {
            cache.setLive(false)
            do {
                let connection = try PGConnection(parameters: parameters)
                try connection.execute("LISTEN \(PostgresRecordStore.uploadChannel)")
                pid.store(PQbackendPID(connection.raw), ordering: .releasing)
                // From here on every commit's notification reaches us: what was read before is suspect.
                cache.setLive(true)
                failures = 0
                listen(on: connection)
            } catch {
                failures += 1
            }
            pid.store(0, ordering: .releasing)
            cache.setLive(false)
            guard !isStopped else { break }
            // Once at once (a restart is quick), then at the retry interval.
            if failures > 0 { Thread.sleep(forTimeInterval: seconds(settings.retry)) }
        }
        cache.setLive(false)
    }

    /// Waits for notifications until the connection is lost or `stop()`.
    private func listen(on connection: PGConnection) {
        let socket = PQsocket(connection.raw)
        guard socket >= 0 else { return }
        var quietSince = ContinuousClock.now
        while !isStopped {
            var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 500)
            if ready < 0 && errno != EINTR { return }
            if ready > 0 {
                guard PQconsumeInput(connection.raw) == 1 else { return }
                quietSince = ContinuousClock.now
            } else if ContinuousClock.now - quietSince >= settings.heartbeat {
                // Nothing for a while: make sure the server is still there.
                guard (try? connection.execute("SELECT 1")) != nil else { return }
                quietSince = ContinuousClock.now
            }
            drain(connection)
            guard PQstatus(connection.raw) == CONNECTION_OK else { return }
        }
    }

    private func drain(_ connection: PGConnection) {
        while let notification = PQnotifies(connection.raw) {
            let payload = notification.pointee.extra.map { String(cString: $0) } ?? ""
            PQfreemem(notification)
            cache.invalidate(payload: payload)
        }
    }

    private func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

extension PostgresRecordStore {
    /// The cache and its listener when `enabled`; this host's own changes evict at once
    /// after their commit, other hosts' when their notification arrives.
    static func startUploadCache(_ enabled: Bool, pool: PGPool, url: String) -> (UploadCache?, PGUploadListener?) {
        guard enabled else { return (nil, nil) }
        // Closed until the listener LISTENs: until then a change on another host would go unheard.
        let cache = UploadCache(live: false)
        pool.afterCommit = { payloads in payloads.forEach(cache.invalidate(payload:)) }
        var settings = pool.settings
        settings.applicationName += "-listener"
        let listener = PGUploadListener(parameters: PGPool.parameters(url: url, settings: settings), cache: cache)
        listener.start()
        return (cache, listener)
    }
}
