/// Where a store tells what its schema migration does, one line each: "migrating schema
/// 4 -> 6" before the first step, then each step's name and duration. Nothing is said when
/// the schema is current. `serve` logs the lines and keeps systemd's start timeout from
/// running out while they run (EXTEND_TIMEOUT_USEC).
public typealias MigrationLog = @Sendable (String) -> Void

extension Duration {
    /// Seconds with milliseconds, for a migration's line: "7.012 s".
    var migrationSeconds: String {
        let milliseconds = components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
        return "\(milliseconds / 1000).\(String(repeating: "0", count: 3 - String(milliseconds % 1000).count))\(milliseconds % 1000) s"
    }
}
