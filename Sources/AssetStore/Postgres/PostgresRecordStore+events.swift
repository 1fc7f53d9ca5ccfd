public import struct Foundation.Date
import JSON

// The transactional outbox on PostgreSQL (migration "v4: event outbox"), statement for
// statement SQLiteRecordStore+events.swift, with what several hosts need: a claim locks the
// deliveries it takes (FOR UPDATE SKIP LOCKED) in the statement that leases them, so that
// hosts claiming together share the work and never take the same delivery, and a later
// event of an asset still waits while an earlier one is pending (leased or backing off).
extension PostgresRecordStore {
    static let eventOutboxSchema = """
        CREATE TABLE event (
            id BIGSERIAL PRIMARY KEY,
            asset_id BIGINT NOT NULL,
            type TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX event_by_created ON event (created_at);
        CREATE TABLE event_sink (
            sink TEXT PRIMARY KEY,
            active BOOLEAN NOT NULL DEFAULT true,
            disabled_at DOUBLE PRECISION,
            disabled_reason TEXT
        );
        CREATE TABLE event_delivery (
            event_id BIGINT NOT NULL REFERENCES event (id),
            sink TEXT NOT NULL REFERENCES event_sink (sink),
            asset_id BIGINT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at DOUBLE PRECISION NOT NULL,
            started_at DOUBLE PRECISION NOT NULL,
            last_error TEXT,
            updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (event_id, sink)
        );
        CREATE INDEX event_delivery_due ON event_delivery (sink, next_attempt_at) WHERE state = 'pending';
        CREATE INDEX event_delivery_by_asset ON event_delivery (sink, asset_id, event_id) WHERE state = 'pending';
        CREATE INDEX event_delivery_by_state ON event_delivery (state, event_id);
        """

    /// Writes the event of a change and a pending delivery of it for every active sink that
    /// is not disabled, in one statement inside the change's own transaction. Per asset,
    /// event ids follow the order of the changes: each change holds the asset's row lock
    /// (its UPDATE) until it commits, and takes its id after that lock.
    static func recordEvent(_ connection: PGConnection, _ type: EventType, asset: AssetRecord, now: Date,
                            extra: [JSONValue.Member] = []) throws {
        let payload = EventPayload.make(type, asset: asset, now: now, extra: extra)
        try connection.query("""
            WITH written AS (
                INSERT INTO event (asset_id, type, payload, created_at) VALUES ($1, $2, $3, $4) RETURNING id)
            INSERT INTO event_delivery (event_id, sink, asset_id, state, attempts, next_attempt_at, started_at, updated_at)
            SELECT written.id, sink, $1, 'pending', 0, $4, $4, $4 FROM written, event_sink WHERE active AND disabled_at IS NULL
            """, [asset.id, type.rawValue, String(decoding: payload, as: UTF8.self), now.timeIntervalSince1970])
    }

    public func activateEventSinks(_ sinks: [String], now: Date) throws {
        try run {
            try pool.transaction { connection in
                for sink in sinks {
                    try connection.query("INSERT INTO event_sink (sink, active) VALUES ($1, true) ON CONFLICT (sink) DO UPDATE SET active = true",
                                         [sink])
                }
            }
        }
    }

    public func claimDeliveries(sink: String, limit: Int, now: Date, leaseUntil: Date) throws -> [EventDelivery] {
        try run {
            try pool.transaction { connection in
                guard try connection.query("SELECT active AND disabled_at IS NULL FROM event_sink WHERE sink = $1", [sink]).first?.bool(0) == true else {
                    return []
                }
                // Due, and the earliest pending event of its asset for this sink; locked rows
                // (another host's claim in progress) are skipped, and the lease written in the
                // same statement. A delivery another host claimed meanwhile is read again under
                // its lock and no longer due.
                let rows = try connection.query("""
                    WITH due AS (
                        SELECT d.event_id FROM event_delivery d
                        WHERE d.sink = $1 AND d.state = 'pending' AND d.next_attempt_at <= $2
                          AND NOT EXISTS (SELECT 1 FROM event_delivery p
                                          WHERE p.sink = d.sink AND p.asset_id = d.asset_id AND p.state = 'pending'
                                            AND p.event_id < d.event_id)
                        ORDER BY d.event_id LIMIT $3
                        FOR UPDATE OF d SKIP LOCKED)
                    UPDATE event_delivery d SET attempts = d.attempts + 1, next_attempt_at = $4, updated_at = $2
                    FROM due, event e
                    WHERE d.sink = $1 AND d.event_id = due.event_id AND e.id = d.event_id AND d.state = 'pending'
                    RETURNING d.event_id, d.asset_id, e.type, e.payload, e.created_at, d.attempts, d.started_at
                    """, [sink, now.timeIntervalSince1970, limit, leaseUntil.timeIntervalSince1970]).rows
                return try rows.map { row in
                    try EventDelivery(
                        eventID: row.int64(0) ?? 0, sink: sink, assetID: row.int64(1) ?? 0,
                        type: decodeStored(row.string(2), table: "event", column: "type"),
                        payload: Array((row.string(3) ?? "").utf8), createdAt: Date(timeIntervalSince1970: row.double(4) ?? 0),
                        attempts: row.int(5) ?? 0, startedAt: Date(timeIntervalSince1970: row.double(6) ?? 0))
                }.sorted { $0.eventID < $1.eventID }
            }
        }
    }

    public func finishDelivery(eventID: Int64, sink: String, attempt: Int, outcome: DeliveryOutcome, now: Date) throws {
        try run {
            try pool.with { connection in
                let state: DeliveryState, next: Double?, error: String?
                switch outcome {
                case .delivered: (state, next, error) = (.delivered, nil, nil)
                case .retry(let at, let why): (state, next, error) = (.pending, at.timeIntervalSince1970, why)
                case .dead(let why): (state, next, error) = (.dead, nil, why)
                }
                try connection.query("""
                    UPDATE event_delivery SET state = $1, next_attempt_at = coalesce($2, next_attempt_at), last_error = $3, updated_at = $4
                    WHERE event_id = $5 AND sink = $6 AND state = 'pending' AND attempts = $7
                    """, [state.rawValue, next, error, now.timeIntervalSince1970, eventID, sink, attempt])
            }
        }
    }

    public func disableEventSink(_ sink: String, reason: String, now: Date) throws {
        try run {
            try pool.transaction { connection in
                try connection.query("UPDATE event_sink SET disabled_at = $1, disabled_reason = $2 WHERE sink = $3",
                                     [now.timeIntervalSince1970, reason, sink])
                try connection.query("UPDATE event_delivery SET state = 'dead', last_error = $1, updated_at = $2 WHERE sink = $3 AND state = 'pending'",
                                     [reason, now.timeIntervalSince1970, sink])
            }
        }
    }

    public func eventDeliveries(state: DeliveryState, limit: Int) throws -> [EventDeliveryStatus] {
        try run {
            try pool.with { connection in
                try connection.query("""
                    SELECT d.event_id, d.sink, d.asset_id, e.type, d.state, d.attempts, d.next_attempt_at, d.last_error, e.created_at
                    FROM event_delivery d JOIN event e ON e.id = d.event_id
                    WHERE d.state = $1 ORDER BY d.event_id, d.sink LIMIT $2
                    """, [state.rawValue, limit]).rows.map { row in
                    try EventDeliveryStatus(
                        eventID: row.int64(0) ?? 0, sink: row.string(1) ?? "", assetID: row.int64(2) ?? 0,
                        type: decodeStored(row.string(3), table: "event", column: "type"),
                        state: decodeStored(row.string(4), table: "event_delivery", column: "state"), attempts: row.int(5) ?? 0,
                        nextAttemptAt: Date(timeIntervalSince1970: row.double(6) ?? 0), lastError: row.string(7),
                        createdAt: Date(timeIntervalSince1970: row.double(8) ?? 0))
                }
            }
        }
    }

    public func redeliverEvent(id: Int64, now: Date) throws -> Int {
        try run {
            try pool.transaction { connection in
                // FOR KEY SHARE: a host pruning this event (FOR UPDATE) waits, or is waited for
                // and leaves nothing to redeliver; never a delivery of a removed event.
                guard let assetID = try connection.query("SELECT asset_id FROM event WHERE id = $1 FOR KEY SHARE", [id]).first?.int64(0) else {
                    return 0
                }
                let time = now.timeIntervalSince1970
                // Sinks configured after the event was written get it too.
                var queued = try connection.query("""
                    INSERT INTO event_delivery (event_id, sink, asset_id, state, attempts, next_attempt_at, started_at, updated_at)
                    SELECT $1, sink, $2, 'pending', 0, $3, $3, $3 FROM event_sink WHERE active
                    ON CONFLICT (event_id, sink) DO NOTHING
                    """, [id, assetID, time]).affectedRows
                queued += try connection.query("""
                    UPDATE event_delivery SET state = 'pending', attempts = 0, next_attempt_at = $1, started_at = $1, last_error = NULL,
                        updated_at = $1
                    WHERE event_id = $2 AND state != 'pending' AND sink IN (SELECT sink FROM event_sink WHERE active)
                    """, [time, id]).affectedRows
                try connection.query("""
                    UPDATE event_sink SET disabled_at = NULL, disabled_reason = NULL
                    WHERE active AND sink IN (SELECT sink FROM event_delivery WHERE event_id = $1)
                    """, [id])
                return queued
            }
        }
    }

    public func eventBacklog() throws -> Int {
        try run {
            try pool.with { connection in
                try connection.query("SELECT count(*) FROM event_delivery WHERE state = 'pending'").first?.int(0) ?? 0
            }
        }
    }

    @discardableResult
    public func pruneEvents(deliveredBefore: Date, deadBefore: Date, afterEventID: Int64, limit: Int) throws -> EventPruning {
        try run {
            try pool.transaction { connection in
                // The batch's events are locked, and those another host is pruning (or an
                // operator redelivering) skipped: hosts prune side by side without waiting,
                // and always lock an event before its deliveries, as a redelivery does.
                let ids = try connection.query("""
                    SELECT id FROM event WHERE id > $1 AND created_at < $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED
                    """, [afterEventID, deliveredBefore.timeIntervalSince1970, limit]).rows.compactMap { $0.int64(0) }
                guard let last = ids.last else { return EventPruning(deliveries: 0, events: 0, examined: 0, lastEventID: afterEventID) }
                let list = "{" + ids.map(String.init).joined(separator: ",") + "}"
                let deliveries = try connection.query("""
                    DELETE FROM event_delivery WHERE event_id = ANY($1::bigint[])
                      AND (state = 'delivered' OR (state = 'dead' AND updated_at < $2))
                    """, [list, deadBefore.timeIntervalSince1970]).affectedRows
                let events = try connection.query("""
                    DELETE FROM event WHERE id = ANY($1::bigint[])
                      AND NOT EXISTS (SELECT 1 FROM event_delivery d WHERE d.event_id = event.id)
                    """, [list]).affectedRows
                return EventPruning(deliveries: deliveries, events: events, examined: ids.count, lastEventID: last)
            }
        }
    }

    public func expireDeliveries(startedBefore: Date, now: Date, limit: Int, expiredReason: String,
                                 inactiveReason: String) throws -> [String: Int] {
        try run {
            try pool.transaction { connection in
                // Only delivery rows are locked, and locked ones skipped (a claim or a
                // redelivery holds them): this never waits, so it cannot deadlock with them.
                let rows = try connection.query("""
                    WITH doomed AS (
                        SELECT d.event_id, d.sink, NOT (s.active AND s.disabled_at IS NULL) AS inactive
                        FROM event_delivery d JOIN event_sink s ON s.sink = d.sink
                        WHERE d.state = 'pending'
                          AND (NOT (s.active AND s.disabled_at IS NULL) OR (d.started_at < $1 AND d.next_attempt_at <= $2))
                        ORDER BY d.event_id LIMIT $3
                        FOR UPDATE OF d SKIP LOCKED)
                    UPDATE event_delivery d
                    SET state = 'dead', last_error = CASE WHEN doomed.inactive THEN $4 ELSE $5 END, updated_at = $2
                    FROM doomed WHERE d.event_id = doomed.event_id AND d.sink = doomed.sink AND d.state = 'pending'
                    RETURNING d.sink
                    """, [startedBefore.timeIntervalSince1970, now.timeIntervalSince1970, limit, inactiveReason, expiredReason]).rows
                return rows.reduce(into: [String: Int]()) { counts, row in counts[row.string(0) ?? "", default: 0] += 1 }
            }
        }
    }

    public func eventSinks() throws -> [EventSinkStatus] {
        try run {
            try pool.with { connection in
                try connection.query("""
                    SELECT s.sink, s.active, s.disabled_at, s.disabled_reason,
                           (SELECT count(*) FROM event_delivery d WHERE d.sink = s.sink AND d.state = 'pending'),
                           (SELECT count(*) FROM event_delivery d WHERE d.sink = s.sink AND d.state = 'dead')
                    FROM event_sink s ORDER BY s.sink
                    """).rows.map { row in
                    EventSinkStatus(sink: row.string(0) ?? "", active: row.bool(1) ?? false,
                                    disabledAt: row.double(2).map(Date.init(timeIntervalSince1970:)), disabledReason: row.string(3),
                                    pending: row.int(4) ?? 0, dead: row.int(5) ?? 0)
                }
            }
        }
    }

    public func retireEventSink(_ sink: String, reason: String, now: Date) throws -> Int {
        try run {
            try pool.transaction { connection in
                try connection.query("UPDATE event_sink SET active = false WHERE sink = $1", [sink])
                // Claims in flight (FOR UPDATE of their rows) finish first; a delivery they
                // lease is still pending, and dies here.
                return try connection.query("""
                    UPDATE event_delivery SET state = 'dead', last_error = $1, updated_at = $2 WHERE sink = $3 AND state = 'pending'
                    """, [reason, now.timeIntervalSince1970, sink]).affectedRows
            }
        }
    }

    /// The asset as the transaction has it now, for an event.
    static func currentAsset(_ connection: PGConnection, id: Int64) throws -> AssetRecord? {
        try connection.query("SELECT \(assetColumns) FROM asset WHERE id = $1", [id]).first.map(asset(from:))
    }
}
