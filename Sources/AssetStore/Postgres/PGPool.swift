import Foundation

/// A bounded pool of libpq connections (ASSETD_DATABASE_POOL), for synchronous callers on
/// any thread: a caller takes a connection, runs its statements, and gives it back.
///
/// Bounded time while PostgreSQL is down: a connect gives up after `connectTimeout`, and
/// after a failed connect every caller fails at once for `backoff` (no queue of threads
/// each waiting out its own connect timeout); a caller that finds every connection busy
/// waits at most `acquireTimeout`. Connections broken by a restart are dropped and remade.
final class PGPool: @unchecked Sendable {
    struct Settings: Sendable {
        var size = 10
        var connectTimeout = 2
        var acquireTimeout: Duration = .seconds(5)
        var statementTimeout: Duration = .seconds(10)
        var backoff: Duration = .seconds(1)
        var applicationName = "assetd"
        /// What the pool's connections are, and the setting of their number, for its "busy"
        /// error: the main pool's, or the search connections' (`PostgresRecordStore.searchPool`).
        var name = "database connection"
        var sizeSetting = "ASSETD_DATABASE_POOL"
        /// Statements every new connection of this pool runs after the common settings:
        /// the search connections' session (`PostgresRecordStore.searchSession`).
        var session: String?
        /// Idle connections older than this are closed (the search connections': they are
        /// extra, and a quiet process should not keep them); nil keeps them.
        var idleTimeout: Duration?
    }

    let settings: Settings
    /// Called with a committed transaction's NOTIFY payloads (the UploadCache: this host's
    /// own eviction right after the commit). Set once, before the pool is used.
    var afterCommit: (([String]) -> Void)?
    private let url: String
    private let condition = NSCondition()
    /// The idle connections, the last released last, each with when it was released.
    private var idle: [(connection: PGConnection, since: ContinuousClock.Instant)] = []
    private var open = 0
    private var failingUntil: ContinuousClock.Instant?
    /// Set when the pool drops a broken connection: bumped so that the others, made before
    /// the same restart, are dropped too instead of each failing one request.
    private var generation = 0

    init(url: String, settings: Settings) {
        self.url = url
        self.settings = settings
        if let timeout = settings.idleTimeout {
            // Checked every half timeout, so an idle connection lives at most 1.5 of it.
            Thread.detachNewThread { [weak self] in
                while true {
                    Thread.sleep(forTimeInterval: Double(timeout.components.seconds) / 2 + 0.001)
                    guard let self else { return }
                    self.closeIdle(olderThan: timeout)
                }
            }
        }
    }

    /// Closes the connections idle for longer than `age` (outside the lock: PQfinish).
    func closeIdle(olderThan age: Duration) {
        let cutoff = ContinuousClock.now - age
        condition.lock()
        // Released in order: the old ones are at the front.
        let old = idle.prefix { $0.since < cutoff }.map(\.connection)
        idle.removeFirst(old.count)
        open -= old.count
        condition.broadcast()
        condition.unlock()
        withExtendedLifetime(old) {}
    }

    /// How many connections are open (idle or in use): for tests.
    var openConnections: Int {
        condition.lock()
        defer { condition.unlock() }
        return open
    }

    /// Runs `body` with a connection of the pool. A connection broken before `body` got an
    /// answer to its first statement (the server restarted while it sat idle) is replaced
    /// and `body` run once more on the new one: nothing it sent can have been applied.
    /// After an answer, a broken connection fails the call (a commit may have happened).
    /// `deadline`: when the caller's wait for a connection ends, if sooner than `acquireTimeout`
    /// from now (a search's, which waited for its turn already: `SearchGate`).
    func with<T>(until deadline: ContinuousClock.Instant? = nil, _ body: (PGConnection) throws -> T) throws -> T {
        var (connection, reused) = try acquire(until: deadline)
        var retried = false
        while true {
            connection.answered = 0
            do {
                let value = try body(connection)
                release(connection)
                return value
            } catch let error as PGError {
                let usable = connection.isUsable
                if !usable { discard() } else { release(connection) }
                guard error.connectionLost, reused, !retried, connection.answered == 0 else { throw error }
                retried = true
                (connection, reused) = try acquire(fresh: true, until: deadline)
            } catch {
                // Not the connection's failure (a Rollback, a conflict): roll back what is open.
                if !connection.isUsable { try? connection.execute("ROLLBACK") }
                if connection.isUsable { release(connection) } else { discard() }
                throw error
            }
        }
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    func transaction<T>(_ body: (PGConnection) throws -> T) throws -> T {
        try with { connection in
            connection.notified.removeAll()
            try connection.execute("BEGIN")
            do {
                let value = try body(connection)
                try connection.execute("COMMIT")
                if !connection.notified.isEmpty { afterCommit?(connection.notified) }
                return value
            } catch {
                try? connection.execute("ROLLBACK")
                throw error
            }
        }
    }

    private func acquire(fresh: Bool = false, until callerDeadline: ContinuousClock.Instant? = nil) throws -> (PGConnection, reused: Bool) {
        let started = ContinuousClock.now
        let deadline = min(started + settings.acquireTimeout, callerDeadline ?? started + settings.acquireTimeout)
        condition.lock()
        if fresh {
            // A restart breaks every connection made before it: drop the idle ones at once.
            open -= idle.count
            idle.removeAll()
        }
        while true {
            if let connection = idle.popLast()?.connection {
                condition.unlock()
                return (connection, true)
            }
            if let until = failingUntil, ContinuousClock.now < until {
                condition.unlock()
                throw PGError(message: "PostgreSQL is unreachable (the last connect failed moments ago)", sqlState: nil, connectionLost: true)
            }
            if open < settings.size {
                open += 1
                condition.unlock()
                do {
                    let connection = try connect()
                    return (connection, false)
                } catch {
                    condition.lock()
                    open -= 1
                    failingUntil = ContinuousClock.now + settings.backoff
                    condition.broadcast()
                    condition.unlock()
                    throw error
                }
            }
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero,
                  condition.wait(until: Date(timeIntervalSinceNow: Double(remaining.components.seconds)
                                                 + Double(remaining.components.attoseconds) / 1e18))
                  || !idle.isEmpty || open < settings.size
            else {
                condition.unlock()
                // The wait made here (a search's deadline may have left it less than
                // acquireTimeout: the rest went to its turn, `SearchGate`).
                let waited = Int((ContinuousClock.now - started) / .milliseconds(1))
                throw PGError(message: "every \(settings.name) stayed busy for \(waited) ms (\(settings.sizeSetting)=\(settings.size))",
                              sqlState: "53300", connectionLost: false)
            }
        }
    }

    private func release(_ connection: PGConnection) {
        condition.lock()
        idle.append((connection, ContinuousClock.now))
        condition.signal()
        condition.unlock()
    }

    private func discard() {
        condition.lock()
        open -= 1
        // The idle ones were made before the same restart: let them go too.
        open -= idle.count
        idle.removeAll()
        condition.broadcast()
        condition.unlock()
    }

    /// A new connection, with the session settings every statement relies on.
    func connect() throws -> PGConnection {
        let connection = try PGConnection(parameters: Self.parameters(url: url, settings: settings))
        let milliseconds = settings.statementTimeout.components.seconds * 1000 + settings.statementTimeout.components.attoseconds / 1_000_000_000_000_000
        try connection.execute("SET statement_timeout = \(milliseconds); SET lock_timeout = \(milliseconds); SET TIME ZONE 'UTC'; "
                               // No NOTICE on standard error (libpq prints them there, outside the
                               // log's format): "relation ... already exists, skipping" at each start.
                               + "SET client_min_messages = warning")
        if let session = settings.session { try connection.execute(session) }
        return connection
    }

    /// libpq's keywords: ours first, then the URL (expanded where it stands), so that what
    /// the operator wrote in the URL wins. The password comes from the URL or PGPASSFILE.
    static func parameters(url: String, settings: Settings) -> [(String, String)] {
        [
            ("connect_timeout", String(settings.connectTimeout)),
            ("application_name", settings.applicationName),
            ("keepalives", "1"), ("keepalives_idle", "10"), ("keepalives_interval", "5"), ("keepalives_count", "3"),
            ("tcp_user_timeout", "15000"),
            ("dbname", url),
        ]
    }
}
