/// Why a record store failed; `description` is for the log, never for the client.
///
/// `VersionConflict` is not one of these: it is an answer (409), not a failure, and
/// every backend throws it as it is.
public enum RecordStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The database could not be opened, or a statement failed.
    case database(String)
    /// The database cannot be reached now (PostgreSQL down or restarting, every pooled
    /// connection busy, a statement timeout): a retry later may succeed (503).
    case unavailable(String)
    /// A stored value that no case of its type has (a status, a state): the record is
    /// refused rather than read as some default.
    case corruptRecord(table: String, column: String, value: String)

    public var description: String {
        switch self {
        case .database(let message), .unavailable(let message):
            message
        case .corruptRecord(let table, let column, let value):
            "corrupt record: \(table).\(column) holds \(value.debugDescription), which is none of its known values"
        }
    }
}
