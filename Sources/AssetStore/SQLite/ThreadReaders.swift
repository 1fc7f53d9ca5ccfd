import Foundation
internal import GRDBSQLite
import Glibc

/// Read-only SQLite connections, one per thread, for the lookup on the presign path.
///
/// GRDB's reader pool costs about 60k instructions a read in pool bookkeeping and
/// `DispatchQueue.sync` (bench/callgrind-presign.sh), twice what SQLite spends on the
/// statement. A thread that asks gets its own connection (opened read-only, in WAL mode it
/// never blocks the writer) with the statement prepared once, closed when the thread ends.
final class ThreadReaders: @unchecked Sendable {
    private let path: String
    private var key = pthread_key_t()

    init(path: String) {
        self.path = path
        pthread_key_create(&key) { pointer in
            if let pointer { Unmanaged<Reader>.fromOpaque(pointer).release() }
        }
    }

    deinit { pthread_key_delete(key) }

    /// The calling thread's reader, opened on first use.
    func reader() throws -> Reader {
        if let existing = pthread_getspecific(key) {
            return Unmanaged<Reader>.fromOpaque(existing).takeUnretainedValue()
        }
        let reader = try Reader(path: path)
        pthread_setspecific(key, Unmanaged.passRetained(reader).toOpaque())
        return reader
    }
}

final class Reader {
    private let connection: OpaquePointer
    private let uploadStatement: OpaquePointer

    init(path: String) throws {
        var connection: OpaquePointer?
        let flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX
        guard sqlite3_open_v2(path, &connection, flags, nil) == SQLITE_OK, let connection else {
            let message = connection.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(connection)
            throw RecordStoreError.database("cannot open a reader on \(path): \(message)")
        }
        sqlite3_busy_timeout(connection, 5000)
        var statement: OpaquePointer?
        let sql = """
            SELECT upload_id, asset_id, workspace_id, key, file_size, part_size, status, parts_digest, location, etag, created_at,
                   version, file_type, file_name
            FROM upload WHERE upload_id = ?1 AND asset_id = ?2 AND workspace_id = ?3
            """
        guard sqlite3_prepare_v3(connection, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK, let statement else {
            let message = String(cString: sqlite3_errmsg(connection))
            sqlite3_close(connection)
            throw RecordStoreError.database("cannot prepare the upload lookup: \(message)")
        }
        self.connection = connection
        self.uploadStatement = statement
    }

    deinit {
        sqlite3_finalize(uploadStatement)
        sqlite3_close(connection)
    }

    func upload(uploadID: String, assetID: Int64, workspaceID: Int64) throws -> UploadRecord? {
        let statement = uploadStatement
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        var uploadID = uploadID
        let bound = uploadID.withUTF8 { bytes in
            // SQLITE_TRANSIENT: SQLite copies the text, which this closure's buffer outlives only briefly.
            sqlite3_bind_text(statement, 1, UnsafeRawPointer(bytes.baseAddress)?.assumingMemoryBound(to: CChar.self),
                              Int32(bytes.count), unsafeBitCast(-1, to: sqlite3_destructor_type.self))
        }
        guard bound == SQLITE_OK,
              sqlite3_bind_int64(statement, 2, assetID) == SQLITE_OK,
              sqlite3_bind_int64(statement, 3, workspaceID) == SQLITE_OK
        else { throw error("bind") }
        switch sqlite3_step(statement) {
        case SQLITE_DONE:
            return nil
        case SQLITE_ROW:
            func text(_ column: Int32) -> String? {
                sqlite3_column_type(statement, column) == SQLITE_NULL ? nil : String(cString: sqlite3_column_text(statement, column))
            }
            func integer(_ column: Int32) -> Int64? {
                sqlite3_column_type(statement, column) == SQLITE_NULL ? nil : sqlite3_column_int64(statement, column)
            }
            return try UploadRecord(
                uploadID: text(0) ?? "", assetID: sqlite3_column_int64(statement, 1), workspaceID: sqlite3_column_int64(statement, 2),
                key: text(3) ?? "", fileSize: integer(4), partSize: integer(5),
                status: decodeStored(text(6), table: "upload", column: "status"), partsDigest: text(7), location: text(8),
                etag: text(9), createdAt: Date(timeIntervalSince1970: sqlite3_column_double(statement, 10)),
                version: integer(11).map(Int.init), fileType: text(12), fileName: text(13))
        default:
            throw error("step")
        }
    }

    private func error(_ stage: String) -> RecordStoreError {
        .database("upload lookup (\(stage)): \(String(cString: sqlite3_errmsg(connection)))")
    }
}
