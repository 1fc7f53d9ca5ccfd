import AssetStore
import Foundation
import Hashing
import S3Client

/// `assetd events` and `assetd setup-search`: what an operator runs beside the service.
public enum EventAdmin {
    /// The outbox of ASSETD_DATABASE, PostgreSQL or SQLite, opened beside a running service
    /// (no single-instance lock: these commands only read, or queue one event again).
    static func outbox(_ configuration: Configuration) throws -> any EventOutbox {
        if DatabaseLocation.isPostgres(configuration.databasePath) {
            var settings = PostgresRecordStore.Settings()
            settings.poolSize = 1
            // No upload cache: its LISTEN thread would still be in libpq while the command
            // exits, and a command reads no upload.
            settings.uploadCache = false
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

    /// A sink's short id for `--retire-sink`: `sink_` + 10 hex digits of the SHA-256 of its
    /// name (a URL may be long, and its query is hidden in listings). The same on every
    /// host and backend, with nothing to store.
    static func sinkID(_ name: String) -> String {
        "sink_" + String(Encoding.hex(SHA256.hash(Array(name.utf8))).prefix(10))
    }

    /// Every sink: id, state (active, retired, or disabled by a 410), pending and dead
    /// deliveries, and its name (a URL's query hidden).
    public static func sinks(_ configuration: Configuration) throws -> String {
        let rows = try outbox(configuration).eventSinks()
        guard !rows.isEmpty else { return "no event sinks\n" }
        var out = "ID\tSTATE\tPENDING\tDEAD\tSINK\n"
        for row in rows {
            let state = !row.active ? "retired" : row.disabledAt != nil ? "disabled" : "active"
            out += "\(sinkID(row.sink))\t\(state)\t\(row.pending)\t\(row.dead)\t\(EventEndpoint.redacted(row.sink))\n"
        }
        return out
    }

    /// Retires the sink named `text` (its id as `--sinks` lists it, or its whole name): a
    /// line saying what became of it. Throws when no sink has that id or name.
    public static func retireSink(_ configuration: Configuration, _ text: String) throws -> String {
        let records = try outbox(configuration)
        guard let sink = try records.eventSinks().first(where: { $0.sink == text || sinkID($0.sink) == text }) else {
            throw ConfigurationError(description: "no sink \(EventEndpoint.redacted(text)): give an id or a name as `assetd events --sinks` lists them")
        }
        let shown = "\(sinkID(sink.sink)) (\(EventEndpoint.redacted(sink.sink)))"
        guard sink.active else {
            return "\(shown) is already retired; nothing changed\n"
        }
        let dead = try records.retireEventSink(sink.sink, reason: "sink retired by an operator (assetd events --retire-sink)", now: Date())
        return "retired \(shown): no new events are queued for it; \(dead) pending deliver\(dead == 1 ? "y" : "ies") became dead. "
            + "A host whose settings still name it makes it active again when it starts.\n"
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
