// The pending-upload cache on PostgreSQL (ASSETD_DATABASE_UPLOAD_CACHE): the shared
// `UploadCache`, with its gate closed until `PGUploadListener` LISTENs, kept right across
// hosts by the notifications below. Every transaction that ends or removes a pending upload
// sends `pg_notify('assetd_uploads', ...)` before its commit (PostgreSQL delivers it only if
// the transaction commits); the listener evicts the entry on every host, and
// `PGPool.afterCommit` on this one.

extension UploadCache {
    /// A payload of the channel: `u:<uploadId>` or `a:<assetId>`; anything else clears all.
    func invalidate(payload: String) {
        if payload.hasPrefix("u:") {
            invalidate(uploadID: String(payload.dropFirst(2)))
        } else if payload.hasPrefix("a:"), let assetID = Int64(payload.dropFirst(2)) {
            invalidate(assetID: assetID)
        } else {
            invalidateAll()
        }
    }

    /// What the payloads say: `u:` an upload, `a:` all uploads of an asset.
    static func payload(uploadID: String) -> String { "u:" + uploadID }
    static func payload(assetID: Int64) -> String { "a:\(assetID)" }
}

extension PostgresRecordStore {
    /// The channel of the upload cache's evictions.
    static let uploadChannel = "assetd_uploads"

    /// Tells every host's cache (this one's after the commit, see `PGPool.afterCommit`)
    /// that `uploadID` ended or changed; sent by every host whatever its own setting, so
    /// that hosts may differ in ASSETD_DATABASE_UPLOAD_CACHE (a rollout).
    static func notifyUploadChanged(_ connection: PGConnection, uploadID: String) throws {
        try notify(connection, UploadCache.payload(uploadID: uploadID))
    }

    /// Every upload of `assetID` ended or was removed (a delete).
    static func notifyUploadsChanged(_ connection: PGConnection, assetID: Int64) throws {
        try notify(connection, UploadCache.payload(assetID: assetID))
    }

    private static func notify(_ connection: PGConnection, _ payload: String) throws {
        try connection.query("SELECT pg_notify('\(uploadChannel)', $1)", [payload])
        connection.notified.append(payload)
    }
}
