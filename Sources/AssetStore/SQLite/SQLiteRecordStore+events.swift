public import struct Foundation.Date
import GRDB
import JSON

// The transactional outbox (migration "v9: event outbox"): every SQL statement of events is
// in this file, so that another backend has one page to port.
//
// - `event`: one row per state change, written by `recordEvent` inside the transaction of
//   that change, with its payload as it will be sent.
// - `event_sink`: the sinks (webhook endpoints, Typesense) events are queued for; `active`
//   says that some host's settings name it (each `serve` adds its own) and no operator
//   retired it since (`assetd events --retire-sink`), `disabled_at` a 410 Gone.
// - `event_delivery`: one row per (event, sink): pending (due at next_attempt_at, which a
//   claim moves to the end of its lease), delivered or dead.
extension SQLiteRecordStore {
    static let eventOutboxSchema = """
        CREATE TABLE event (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            asset_id INTEGER NOT NULL,
            type TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX event_by_created ON event(created_at);
        CREATE TABLE event_sink (
            sink TEXT PRIMARY KEY,
            active INTEGER NOT NULL DEFAULT 1,
            disabled_at REAL,
            disabled_reason TEXT
        );
        CREATE TABLE event_delivery (
            event_id INTEGER NOT NULL REFERENCES event(id),
            sink TEXT NOT NULL REFERENCES event_sink(sink),
            asset_id INTEGER NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            started_at REAL NOT NULL,
            last_error TEXT,
            updated_at REAL NOT NULL,
            PRIMARY KEY (event_id, sink)
        ) WITHOUT ROWID;
        CREATE INDEX event_delivery_due ON event_delivery(sink, next_attempt_at) WHERE state = 'pending';
        CREATE INDEX event_delivery_by_asset ON event_delivery(sink, asset_id, event_id) WHERE state = 'pending';
        CREATE INDEX event_delivery_by_state ON event_delivery(state, event_id);
        """

    /// Writes the event of a change, and a pending delivery of it for every active sink
    /// that is not disabled, inside the change's own transaction: if it rolls back, no
    /// event exists; if it commits, the event does.
    static func recordEvent(_ db: GRDB.Database, _ type: EventType, asset: AssetRecord, now: Date, extra: [JSONValue.Member] = []) throws {
        let payload = EventPayload.make(type, asset: asset, now: now, extra: extra)
        // Cached statements: prepared once per connection, not on every change.
        try db.cachedStatement(sql: "INSERT INTO event (asset_id, type, payload, created_at) VALUES (?, ?, ?, ?)")
            .execute(arguments: [asset.id, type.rawValue, String(decoding: payload, as: UTF8.self), now.timeIntervalSince1970])
        try db.cachedStatement(sql: """
            INSERT INTO event_delivery (event_id, sink, asset_id, state, attempts, next_attempt_at, started_at, updated_at)
            SELECT ?1, sink, ?2, 'pending', 0, ?3, ?3, ?3 FROM event_sink WHERE active = 1 AND disabled_at IS NULL
            """).execute(arguments: [db.lastInsertedRowID, asset.id, now.timeIntervalSince1970])
    }

    /// The asset as the transaction has it now, for an event.
    static func currentAsset(_ db: GRDB.Database, id: Int64) throws -> AssetRecord? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT \(Self.assetColumns) FROM asset WHERE id = ?"), arguments: [id]).map(Self.asset(from:))
    }

    public func activateEventSinks(_ sinks: [String], now: Date) throws {
        try run {
            try pool.write { db in
                for sink in sinks {
                    try db.execute(sql: "INSERT INTO event_sink (sink, active) VALUES (?, 1) ON CONFLICT (sink) DO UPDATE SET active = 1",
                                   arguments: [sink])
                }
            }
        }
    }

    public func claimDeliveries(sink: String, limit: Int, now: Date, leaseUntil: Date) throws -> [EventDelivery] {
        try run {
            try pool.write { db in
                guard try Bool.fetchOne(db, sql: "SELECT active = 1 AND disabled_at IS NULL FROM event_sink WHERE sink = ?", arguments: [sink]) == true else {
                    return []
                }
                // Due, and the earliest pending event of its asset for this sink: a later one
                // waits, even while the earlier one is leased to another worker or backing off.
                let rows = try Row.fetchAll(db, sql: """
                    SELECT d.event_id, d.asset_id, e.type, e.payload, e.created_at, d.attempts, d.started_at
                    FROM event_delivery d JOIN event e ON e.id = d.event_id
                    WHERE d.sink = ?1 AND d.state = 'pending' AND d.next_attempt_at <= ?2
                      AND NOT EXISTS (SELECT 1 FROM event_delivery p
                                      WHERE p.sink = d.sink AND p.asset_id = d.asset_id AND p.state = 'pending' AND p.event_id < d.event_id)
                    ORDER BY d.event_id LIMIT ?3
                    """, arguments: [sink, now.timeIntervalSince1970, limit])
                var claimed: [EventDelivery] = []
                for row in rows {
                    try db.execute(sql: """
                        UPDATE event_delivery SET attempts = attempts + 1, next_attempt_at = ?, updated_at = ?
                        WHERE event_id = ? AND sink = ? AND state = 'pending'
                        """, arguments: [leaseUntil.timeIntervalSince1970, now.timeIntervalSince1970, row[0] as Int64, sink])
                    let payload: String = row[3]
                    claimed.append(try EventDelivery(
                        eventID: row[0], sink: sink, assetID: row[1],
                        type: Self.storedCase(row, at: 2, "type", table: "event"),
                        payload: Array(payload.utf8), createdAt: Date(timeIntervalSince1970: row[4]),
                        attempts: (row[5] as Int) + 1, startedAt: Date(timeIntervalSince1970: row[6])))
                }
                return claimed
            }
        }
    }

    public func finishDelivery(eventID: Int64, sink: String, attempt: Int, outcome: DeliveryOutcome, now: Date) throws {
        try run {
            try pool.write { db in
                let state: DeliveryState, next: Double?, error: String?
                switch outcome {
                case .delivered: (state, next, error) = (.delivered, nil, nil)
                case .retry(let at, let why): (state, next, error) = (.pending, at.timeIntervalSince1970, why)
                case .dead(let why): (state, next, error) = (.dead, nil, why)
                }
                try db.execute(sql: """
                    UPDATE event_delivery SET state = ?, next_attempt_at = coalesce(?, next_attempt_at), last_error = ?, updated_at = ?
                    WHERE event_id = ? AND sink = ? AND state = 'pending' AND attempts = ?
                    """, arguments: [state.rawValue, next, error, now.timeIntervalSince1970, eventID, sink, attempt])
            }
        }
    }

    public func disableEventSink(_ sink: String, reason: String, now: Date) throws {
        try run {
            try pool.write { db in
                try db.execute(sql: "UPDATE event_sink SET disabled_at = ?, disabled_reason = ? WHERE sink = ?",
                               arguments: [now.timeIntervalSince1970, reason, sink])
                try db.execute(sql: "UPDATE event_delivery SET state = 'dead', last_error = ?, updated_at = ? WHERE sink = ? AND state = 'pending'",
                               arguments: [reason, now.timeIntervalSince1970, sink])
            }
        }
    }

    public func eventDeliveries(state: DeliveryState, limit: Int) throws -> [EventDeliveryStatus] {
        try run {
            try pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT d.event_id, d.sink, d.asset_id, e.type, d.state, d.attempts, d.next_attempt_at, d.last_error, e.created_at
                    FROM event_delivery d JOIN event e ON e.id = d.event_id
                    WHERE d.state = ? ORDER BY d.event_id, d.sink LIMIT ?
                    """, arguments: [state.rawValue, limit]).map { row in
                    try EventDeliveryStatus(
                        eventID: row[0], sink: row[1], assetID: row[2], type: Self.storedCase(row, at: 3, "type", table: "event"),
                        state: Self.storedCase(row, at: 4, "state", table: "event_delivery"), attempts: row[5],
                        nextAttemptAt: Date(timeIntervalSince1970: row[6]), lastError: row[7], createdAt: Date(timeIntervalSince1970: row[8]))
                }
            }
        }
    }

    public func redeliverEvent(id: Int64, now: Date) throws -> Int {
        try run {
            try pool.write { db in
                guard let assetID = try Int64.fetchOne(db, sql: "SELECT asset_id FROM event WHERE id = ?", arguments: [id]) else { return 0 }
                let time = now.timeIntervalSince1970
                // Sinks configured after the event was written get it too.
                try db.execute(sql: """
                    INSERT INTO event_delivery (event_id, sink, asset_id, state, attempts, next_attempt_at, started_at, updated_at)
                    SELECT ?1, sink, ?2, 'pending', 0, ?3, ?3, ?3 FROM event_sink WHERE active = 1
                    ON CONFLICT (event_id, sink) DO NOTHING
                    """, arguments: [id, assetID, time])
                var queued = db.changesCount
                try db.execute(sql: """
                    UPDATE event_delivery SET state = 'pending', attempts = 0, next_attempt_at = ?1, started_at = ?1, last_error = NULL, updated_at = ?1
                    WHERE event_id = ?2 AND state != 'pending' AND sink IN (SELECT sink FROM event_sink WHERE active = 1)
                    """, arguments: [time, id])
                queued += db.changesCount
                try db.execute(sql: """
                    UPDATE event_sink SET disabled_at = NULL, disabled_reason = NULL
                    WHERE active = 1 AND sink IN (SELECT sink FROM event_delivery WHERE event_id = ?)
                    """, arguments: [id])
                return queued
            }
        }
    }

    public func eventBacklog() throws -> Int {
        try run { try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM event_delivery WHERE state = 'pending'") ?? 0 } }
    }

    @discardableResult
    public func pruneEvents(deliveredBefore: Date, deadBefore: Date, afterEventID: Int64, limit: Int) throws -> EventPruning {
        try run {
            try pool.write { db in
                let ids = try Int64.fetchAll(db, sql: "SELECT id FROM event WHERE id > ? AND created_at < ? ORDER BY id LIMIT ?",
                                             arguments: [afterEventID, deliveredBefore.timeIntervalSince1970, limit])
                guard let last = ids.last else { return EventPruning(deliveries: 0, events: 0, examined: 0, lastEventID: afterEventID) }
                // The batch's ids are bound as a range: they are the only events in it.
                try db.execute(sql: """
                    DELETE FROM event_delivery WHERE event_id > ?1 AND event_id <= ?2
                      AND event_id IN (SELECT id FROM event WHERE id > ?1 AND id <= ?2 AND created_at < ?3)
                      AND (state = 'delivered' OR (state = 'dead' AND updated_at < ?4))
                    """, arguments: [afterEventID, last, deliveredBefore.timeIntervalSince1970, deadBefore.timeIntervalSince1970])
                let deliveries = db.changesCount
                try db.execute(sql: """
                    DELETE FROM event WHERE id > ?1 AND id <= ?2 AND created_at < ?3
                      AND NOT EXISTS (SELECT 1 FROM event_delivery d WHERE d.event_id = event.id)
                    """, arguments: [afterEventID, last, deliveredBefore.timeIntervalSince1970])
                return EventPruning(deliveries: deliveries, events: db.changesCount, examined: ids.count, lastEventID: last)
            }
        }
    }

    public func expireDeliveries(startedBefore: Date, now: Date, limit: Int, expiredReason: String,
                                 inactiveReason: String) throws -> [String: Int] {
        try run {
            try pool.write { db in
                let doomed = try Row.fetchAll(db, sql: """
                    SELECT d.event_id, d.sink, NOT (s.active AND s.disabled_at IS NULL)
                    FROM event_delivery d JOIN event_sink s ON s.sink = d.sink
                    WHERE d.state = 'pending'
                      AND (NOT (s.active AND s.disabled_at IS NULL) OR (d.started_at < ?1 AND d.next_attempt_at <= ?2))
                    ORDER BY d.event_id LIMIT ?3
                    """, arguments: [startedBefore.timeIntervalSince1970, now.timeIntervalSince1970, limit])
                var counts: [String: Int] = [:]
                for row in doomed {
                    let sink: String = row[1], inactive: Bool = row[2]
                    try db.execute(sql: """
                        UPDATE event_delivery SET state = 'dead', last_error = ?, updated_at = ? WHERE event_id = ? AND sink = ? AND state = 'pending'
                        """, arguments: [inactive ? inactiveReason : expiredReason, now.timeIntervalSince1970, row[0] as Int64, sink])
                    counts[sink, default: 0] += db.changesCount
                }
                return counts
            }
        }
    }

    public func eventSinks() throws -> [EventSinkStatus] {
        try run {
            try pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT s.sink, s.active, s.disabled_at, s.disabled_reason,
                           (SELECT count(*) FROM event_delivery d WHERE d.sink = s.sink AND d.state = 'pending'),
                           (SELECT count(*) FROM event_delivery d WHERE d.sink = s.sink AND d.state = 'dead')
                    FROM event_sink s ORDER BY s.sink
                    """).map { row in
                    EventSinkStatus(sink: row[0], active: row[1], disabledAt: (row[2] as Double?).map(Date.init(timeIntervalSince1970:)),
                                    disabledReason: row[3], pending: row[4], dead: row[5])
                }
            }
        }
    }

    public func retireEventSink(_ sink: String, reason: String, now: Date) throws -> Int {
        try run {
            try pool.write { db in
                try db.execute(sql: "UPDATE event_sink SET active = 0 WHERE sink = ?", arguments: [sink])
                try db.execute(sql: "UPDATE event_delivery SET state = 'dead', last_error = ?, updated_at = ? WHERE sink = ? AND state = 'pending'",
                               arguments: [reason, now.timeIntervalSince1970, sink])
                return db.changesCount
            }
        }
    }
}
