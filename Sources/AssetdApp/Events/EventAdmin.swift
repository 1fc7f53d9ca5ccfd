import AssetStore
import Foundation
import S3Client

/// `assetd events` and `assetd setup-search`: what an operator runs beside the service.
public enum EventAdmin {
    /// The outbox of ASSETD_DATABASE, PostgreSQL or SQLite, opened beside a running service
    /// (no single-instance lock: these commands only read, or queue one event again).
    static func outbox(_ configuration: Configuration) throws -> any EventOutbox {
        if DatabaseLocation.isPostgres(configuration.databasePath) {
            var settings = PostgresRecordStore.Settings()
            settings.poolSize = 1
            return try PostgresRecordStore(url: configuration.databasePath, settings: settings)
        }
        return try SQLiteRecordStore(path: configuration.databasePath)
    }

    /// The backlog (pending deliveries) or the dead ones, one line each, oldest first.
    public static func list(_ configuration: Configuration, dead: Bool, limit: Int) throws -> String {
        let records = try outbox(configuration)
        let rows = try records.eventDeliveries(state: dead ? .dead : .pending, limit: limit)
        guard !rows.isEmpty else { return dead ? "no dead events\n" : "no events waiting\n" }
        var out = "EVENT\tTYPE\tASSET\tSINK\tATTEMPTS\t\(dead ? "CREATED" : "NEXT ATTEMPT")\tLAST ERROR\n"
        for row in rows {
            let when = EventPayload.iso8601(dead ? row.createdAt : row.nextAttemptAt)
            let error = (row.lastError ?? "-").replacingOccurrences(of: "\t", with: " ").replacingOccurrences(of: "\n", with: " ")
            out += "\(EventDelivery.webhookID(row.eventID))\t\(row.type.rawValue)\t\(row.assetID)\t\(EventEndpoint.redacted(row.sink))\t\(row.attempts)\t\(when)\t\(error)\n"
        }
        if rows.count == limit { out += "(first \(limit); --limit N for more)\n" }
        return out
    }

    /// Queues event `id` (`evt_12` or `12`) again for every configured sink; how many
    /// deliveries were queued. Throws when there is no such event.
    public static func redeliver(_ configuration: Configuration, id text: String) throws -> Int {
        guard let id = EventDelivery.eventID(parsing: text) else {
            throw ConfigurationError(description: "--redeliver takes an event id such as evt_12 (as `assetd events --dead` lists them), not \(text)")
        }
        let records = try outbox(configuration)
        let queued = try records.redeliverEvent(id: id, now: Date())
        guard queued > 0 else {
            throw ConfigurationError(description: "no event evt_\(id) to redeliver (it may be pending already, or pruned), or no sink is configured")
        }
        return queued
    }

    /// Creates the Typesense collection with its schema; says whether it was made or existed.
    public static func setupSearch(_ configuration: Configuration) throws -> String {
        guard let settings = configuration.typesense else {
            throw ConfigurationError(description: "ASSETD_TYPESENSE_URL, ASSETD_TYPESENSE_API_KEY and ASSETD_TYPESENSE_COLLECTION must be set")
        }
        let sink = TypesenseSink(settings: settings, http: HTTPClient())
        return try sink.createCollection()
            ? "created the Typesense collection \(settings.collection)\n"
            : "the Typesense collection \(settings.collection) exists already; nothing changed\n"
    }
}
