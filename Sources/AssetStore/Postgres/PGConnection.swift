internal import CLibPQ
import Foundation

/// A value bound to a statement's `$n`, sent in libpq's text format (nil is NULL).
protocol PGBindable {
    var pgText: String? { get }
}

extension String: PGBindable { var pgText: String? { self } }
extension Int64: PGBindable { var pgText: String? { String(self) } }
extension Int: PGBindable { var pgText: String? { String(self) } }
/// Swift prints the shortest text that reads back as the same Double: no precision lost.
extension Double: PGBindable { var pgText: String? { "\(self)" } }
extension Bool: PGBindable { var pgText: String? { self ? "t" : "f" } }
extension Optional: PGBindable where Wrapped: PGBindable { var pgText: String? { self?.pgText } }

/// Why a statement or a connection failed. `connectionLost` is true when the connection is
/// no longer usable (the server went away), so that the pool drops it and the caller
/// answers 503 rather than 500.
struct PGError: Error, CustomStringConvertible {
    var message: String
    var sqlState: String?
    var connectionLost: Bool

    var description: String { sqlState.map { "\(message) (SQLSTATE \($0))" } ?? message }

    /// The server cancelled the statement (statement_timeout) or is shutting down: the
    /// database is unavailable for now, not broken.
    var isUnavailable: Bool {
        connectionLost || sqlState == "57014" || sqlState?.hasPrefix("08") == true || sqlState == "57P01"
            || sqlState == "57P02" || sqlState == "57P03"
    }
}

/// One libpq connection, used by one thread at a time (the pool sees to that). Statements
/// are prepared once per connection and then sent by name: parse and plan once.
final class PGConnection {
    let raw: OpaquePointer
    private var prepared: [String: String] = [:]
    /// Statements answered since the pool handed the connection out: a failure before the
    /// first answer cannot have changed anything, so the pool may replay it elsewhere.
    var answered = 0
    /// The payloads this transaction NOTIFYed (the UploadCache), for `PGPool.afterCommit`.
    var notified: [String] = []
    /// A search connection's plan settings now (`PostgresRecordStore.use`): a new one's
    /// session begins with the walk's.
    var searchPlan = PostgresRecordStore.Plan.walk

    /// Connects with `parameters` (libpq keywords, in order: later ones override earlier
    /// ones, and a `dbname` holding a URL is expanded where it stands).
    init(parameters: [(String, String)]) throws(PGError) {
        let keywords = parameters.map { strdup($0.0) } + [nil]
        let values = parameters.map { strdup($0.1) } + [nil]
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let connection: OpaquePointer? = keywords.map { UnsafePointer($0) }.withUnsafeBufferPointer { k in
            values.map { UnsafePointer($0) }.withUnsafeBufferPointer { v in
                PQconnectdbParams(k.baseAddress, v.baseAddress, 1)
            }
        }
        guard let connection else { throw PGError(message: "libpq could not allocate a connection", sqlState: nil, connectionLost: true) }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = Self.trimmed(PQerrorMessage(connection))
            PQfinish(connection)
            throw PGError(message: "cannot connect to PostgreSQL: \(message)", sqlState: nil, connectionLost: true)
        }
        raw = connection
    }

    deinit { PQfinish(raw) }

    /// Connected, outside a transaction, and not left in pipeline mode by a failed `query(after:_:_:)`.
    var isUsable: Bool {
        PQstatus(raw) == CONNECTION_OK && PQtransactionStatus(raw) == PQTRANS_IDLE && PQpipelineStatus(raw) == PQ_PIPELINE_OFF
    }

    /// Runs `sql` with `parameters` as `$1...`; the rows, if any. Prepared on first use.
    @discardableResult
    func query(_ sql: String, _ parameters: [any PGBindable] = []) throws(PGError) -> PGResult {
        let name = try preparedName(sql)
        let texts = parameters.map { $0.pgText.map { strdup($0) } ?? nil }
        defer { texts.forEach { free($0) } }
        let result = texts.map { UnsafePointer($0) }.withUnsafeBufferPointer { values in
            PQexecPrepared(raw, name, Int32(texts.count), values.baseAddress, nil, nil, 0)
        }
        try check(result, sql: sql)
        answered += 1
        return PGResult(raw: result!)
    }

    /// Runs `settings` (statements without parameters or rows, one each: SETs), then `sql`
    /// with `parameters` as `query` does, in one round trip: libpq's pipeline mode, one Sync
    /// after them all, so that they are one implicit transaction (a failing `sql` undoes the
    /// settings too: the session is as before). A search's change of plan (`use`) was a
    /// round trip of its own before each statement that needed it.
    func query(after settings: [String], _ sql: String, _ parameters: [any PGBindable]) throws(PGError) -> PGResult {
        let name = try preparedName(sql)
        guard PQenterPipelineMode(raw) == 1 else {
            throw PGError(message: "PostgreSQL: libpq could not enter pipeline mode: \(Self.trimmed(PQerrorMessage(raw)))",
                          sqlState: nil, connectionLost: PQstatus(raw) != CONNECTION_OK)
        }
        let texts = parameters.map { $0.pgText.map { strdup($0) } ?? nil }
        defer { texts.forEach { free($0) } }
        var sent = settings.allSatisfy { PQsendQueryParams(raw, $0, 0, nil, nil, nil, nil, 0) == 1 }
        sent = sent && texts.map { UnsafePointer($0) }.withUnsafeBufferPointer { values in
            PQsendQueryPrepared(raw, name, Int32(texts.count), values.baseAddress, nil, nil, 0) == 1
        }
        guard sent, PQpipelineSync(raw) == 1 else {
            // What was sent cannot be read back in order: the connection is not reused.
            throw PGError(message: "PostgreSQL: \(Self.trimmed(PQerrorMessage(raw))) [pipeline]", sqlState: nil, connectionLost: true)
        }
        // Every statement's result, each followed by a NULL, then the Sync's. The first
        // failure is thrown once all are read (the statements after it come back aborted).
        var failure: PGError?
        var answer: OpaquePointer?
        for index in 0...settings.count {
            let result = PQgetResult(raw)
            let extra = result == nil ? nil : PQgetResult(raw)
            if result == nil || extra != nil {
                if failure == nil, let result, PQresultStatus(result) != PGRES_PIPELINE_ABORTED {
                    do { try check(result, sql: index < settings.count ? settings[index] : sql, clears: false) } catch { failure = error }
                }
                if let result { PQclear(result) }
                if let extra { PQclear(extra) }
                throw Self.lost(failure, "the pipeline's answers are out of step")
            }
            if failure == nil {
                if PQresultStatus(result) == PGRES_PIPELINE_ABORTED {
                    // Aborted by a failure that was not read first: never an empty answer (review14 I3).
                    failure = PGError(message: "PostgreSQL: the pipeline was aborted [pipeline]", sqlState: nil, connectionLost: true)
                } else {
                    do { try check(result, sql: index < settings.count ? settings[index] : sql, clears: false) } catch { failure = error }
                }
            }
            if index == settings.count, failure == nil { answer = result } else { PQclear(result) }
        }
        let sync = PQgetResult(raw)
        let synced = sync.map(PQresultStatus) == PGRES_PIPELINE_SYNC
        if let sync { PQclear(sync) }
        guard synced, PQexitPipelineMode(raw) == 1 else {
            if let answer { PQclear(answer) }
            throw Self.lost(failure, "the pipeline ended without its Sync")
        }
        if let failure { throw failure }
        answered += 1
        return PGResult(raw: answer!)
    }

    /// A pipeline that cannot go on: the connection is not reused (`connectionLost`, which
    /// also lets the pool retry once on a fresh one). The server's own error when one was
    /// read (review14 P2: a backend terminated mid-statement sends 57P01 before the
    /// connection ends, which the log must say), else `what`. `PQstatus` may still say
    /// CONNECTION_OK when that error is read, hence `connectionLost` forced.
    private static func lost(_ failure: PGError?, _ what: String) -> PGError {
        guard var failure else { return PGError(message: "PostgreSQL: \(what) [pipeline]", sqlState: nil, connectionLost: true) }
        failure.message += " [pipeline]"
        failure.connectionLost = true
        return failure
    }

    /// Runs statements without parameters (BEGIN, COMMIT, SET, a migration's DDL).
    func execute(_ sql: String) throws(PGError) {
        let result = PQexec(raw, sql)
        try check(result, sql: sql)
        answered += 1
        PQclear(result)
    }

    /// The name `sql` is prepared under on this connection, prepared now if it is new.
    private func preparedName(_ sql: String) throws(PGError) -> String {
        if let known = prepared[sql] { return known }
        let name = "s\(prepared.count)"
        let result = PQprepare(raw, name, sql, 0, nil)
        try check(result, sql: sql)
        PQclear(result)
        prepared[sql] = name
        return name
    }

    /// Throws the failure `result` holds, if any (freeing it, unless `clears` is false).
    private func check(_ result: OpaquePointer?, sql: String, clears: Bool = true) throws(PGError) {
        let status = result.map(PQresultStatus) ?? PGRES_FATAL_ERROR
        guard status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK else { return }
        let state = result.flatMap { PQresultErrorField($0, Int32(UInt8(ascii: "C"))) }.map { String(cString: $0) }
        let message = result.flatMap { PQresultErrorMessage($0) }.map { Self.trimmed($0) } ?? ""
        let fallback = Self.trimmed(PQerrorMessage(raw))
        if clears, let result { PQclear(result) }
        let lost = PQstatus(raw) != CONNECTION_OK
        // The statement's first words only: values travel as parameters, never in the text.
        let head = sql.split(separator: " ", maxSplits: 3).prefix(3).joined(separator: " ")
        throw PGError(message: "PostgreSQL: \(message.isEmpty ? fallback : message) [\(head) ...]", sqlState: state, connectionLost: lost)
    }

    private static func trimmed(_ text: UnsafePointer<CChar>?) -> String {
        text.map { String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
    }
}

/// The rows of a statement, read in text format; freed with the value.
final class PGResult {
    fileprivate let raw: OpaquePointer

    fileprivate init(raw: OpaquePointer) { self.raw = raw }

    deinit { PQclear(raw) }

    var count: Int { Int(PQntuples(raw)) }

    /// Rows changed by an INSERT, UPDATE or DELETE: the compare-and-set's answer.
    var affectedRows: Int { Int(String(cString: PQcmdTuples(raw))) ?? 0 }

    var rows: [PGRow] { (0..<count).map { PGRow(result: self, index: Int32($0)) } }

    var first: PGRow? { count > 0 ? PGRow(result: self, index: 0) : nil }

    fileprivate func column(_ name: String) -> Int32 { PQfnumber(raw, name) }
}

/// One row: columns by index (in the SELECT's order) or by name.
struct PGRow {
    fileprivate let result: PGResult
    fileprivate let index: Int32

    func string(_ column: Int) -> String? {
        guard PQgetisnull(result.raw, index, Int32(column)) == 0 else { return nil }
        return String(cString: PQgetvalue(result.raw, index, Int32(column)))
    }

    func string(_ name: String) -> String? { string(Int(result.column(name))) }

    func int64(_ column: Int) -> Int64? { string(column).flatMap { Int64($0) } }
    func int64(_ name: String) -> Int64? { string(name).flatMap { Int64($0) } }
    func int(_ column: Int) -> Int? { string(column).flatMap { Int($0) } }
    func int(_ name: String) -> Int? { string(name).flatMap { Int($0) } }
    func double(_ column: Int) -> Double? { string(column).flatMap { Double($0) } }
    func double(_ name: String) -> Double? { string(name).flatMap { Double($0) } }
    func bool(_ column: Int) -> Bool? { string(column).map { $0 == "t" } }
}
