public import struct Foundation.Date
import Foundation
public import JSON

/// What happened to an asset: the `type` of an event in the outbox (docs/API.md, "Events").
public enum EventType: String, Sendable, CaseIterable {
    case assetReady = "asset.ready"
    case assetVersionAdded = "asset.version_added"
    case assetDeleted = "asset.deleted"
    case thumbnailReady = "thumbnail.ready"
    case thumbnailFailed = "thumbnail.failed"
    case assetUpdated = "asset.updated"
}

/// The body every sink is sent for an event, built once, in the transaction of the change
/// it reports, and stored as it will be sent: retries send the same bytes.
///
/// `{type, timestamp, data: {assetId, workspaceId, version, ...the record's search fields}}`.
/// Every backend builds it with this same function, so payloads do not depend on the store.
public enum EventPayload {
    /// The most bytes a payload may have (issue 19: under 20 KB).
    public static let maxBytes = 20_000
    /// Free-text fields are cut to this many bytes when a payload would be too large.
    static let truncatedFieldBytes = 512

    /// The payload of `type` for `asset` as the change left it; `extra` members go at the
    /// end of `data` (a previous version, a thumbnail's reason).
    public static func make(_ type: EventType, asset: AssetRecord, now: Date, extra: [JSONValue.Member] = []) -> [UInt8] {
        let full = body(type, asset: asset, now: now, extra: extra, cut: nil)
        if full.count <= maxBytes { return full }
        // Too large (a long file name or reason; fields the search work adds): cut every
        // free-text string, then drop the extras, and say so.
        let cut = body(type, asset: asset, now: now, extra: extra, cut: truncatedFieldBytes)
        if cut.count <= maxBytes { return cut }
        return body(type, asset: asset, now: now, extra: [], cut: truncatedFieldBytes)
    }

    static func body(_ type: EventType, asset: AssetRecord, now: Date, extra: [JSONValue.Member], cut: Int?) -> [UInt8] {
        func text(_ value: String?) -> JSONValue {
            guard let value else { return .null }
            guard let cut, value.utf8.count > cut else { return .string(value) }
            return .string(truncated(value, toBytes: cut))
        }
        var data: [JSONValue.Member] = [
            .init("assetId", .string(String(asset.id))),
            .init("workspaceId", .string(String(asset.workspaceID))),
            .init("version", .int(asset.currentVersion)),
            .init("key", .string(asset.key)),
            .init("fileName", text(asset.fileName)),
            // The search fields that PATCH sets (bounded there: 255 bytes, 32 tags of 64).
            .init("title", text(asset.title)),
            .init("tags", .array(asset.tags.map { .string($0) })),
            .init("fileType", .string(asset.fileType)),
            .init("size", asset.size.map { .int64($0) } ?? .null),
            .init("etag", .optional(asset.etag)),
            .init("status", .string(asset.status.rawValue)),
            .init("thumbnail", ["status": .string(asset.thumbnailStatus.rawValue)]),
            .init("createdAt", .string(iso8601(asset.createdAt))),
            .init("updatedAt", .string(iso8601(asset.updatedAt))),
        ]
        data += extra.map { member in
            if case .string(let value) = member.value { return JSONValue.Member(member.key, text(value)) }
            return member
        }
        if cut != nil { data.append(.init("truncated", true)) }
        let event: JSONValue = .object([
            .init("type", .string(type.rawValue)),
            .init("timestamp", .string(iso8601(now))),
            .init("data", .object(data)),
        ])
        return event.serialized()
    }

    /// At most `limit` bytes of `value`, cut at a character boundary.
    static func truncated(_ value: String, toBytes limit: Int) -> String {
        var out = ""
        var used = 0
        for character in value {
            let size = character.utf8.count
            if used + size > limit { break }
            out.append(character)
            used += size
        }
        return out
    }

    /// RFC 3339 in UTC with milliseconds (`2026-12-01T09:37:04.123Z`), as every payload
    /// writes times. By hand: Foundation's ISO8601FormatStyle cost a third of the event's
    /// time in its state change's transaction (BENCHMARKS.md, "The outbox").
    public static func iso8601(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000)
        let fraction = Int(milliseconds - Int64(seconds) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var out = [UInt8]()
        out.reserveCapacity(24)
        func digits(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var rest = max(0, value)
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(rest / divisor % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4); out.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2); out.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2); out.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2); out.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2); out.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2); out.append(UInt8(ascii: "."))
        digits(fraction, 3); out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }
}

/// Where one event stands for one sink (a webhook endpoint, or Typesense).
public enum DeliveryState: String, Sendable, CaseIterable {
    /// Due at `nextAttemptAt` (or claimed until then by a worker).
    case pending
    /// A 2xx (or the sink's success) was received.
    case delivered
    /// Given up: retried past the deadline, or its endpoint answered 410 Gone.
    case dead
}

/// A claimed delivery: the event and the attempt this is.
public struct EventDelivery: Sendable, Equatable {
    public var eventID: Int64
    public var sink: String
    public var assetID: Int64
    public var type: EventType
    /// The body, exactly as stored (and as every attempt sends it).
    public var payload: [UInt8]
    public var createdAt: Date
    /// Attempts begun, this one included.
    public var attempts: Int
    /// When the current run of attempts began: the event's creation, or a redelivery.
    public var startedAt: Date

    /// The id receivers see (`webhook-id`): the same on every attempt and every endpoint.
    public var webhookID: String { EventDelivery.webhookID(eventID) }

    public static func webhookID(_ eventID: Int64) -> String { "evt_\(eventID)" }

    /// The event id in `evt_123` or `123`; nil for anything else.
    public static func eventID(parsing text: String) -> Int64? {
        let digits = text.hasPrefix("evt_") ? String(text.dropFirst(4)) : text
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let id = Int64(digits), id > 0 else { return nil }
        return id
    }
}

/// What became of one attempt.
public enum DeliveryOutcome: Sendable, Equatable {
    case delivered
    /// Try again at that time; `error` says why it failed (no secret, no query string).
    case retry(at: Date, error: String)
    /// Give up on this event for this sink.
    case dead(error: String)
}

/// A sink as `assetd events --sinks` lists it.
public struct EventSinkStatus: Sendable, Equatable {
    public var sink: String
    /// New events are queued for it: some host configured it at its start, and no operator
    /// retired it since.
    public var active: Bool
    /// When it answered 410 Gone (it gets nothing until a redelivery), with why.
    public var disabledAt: Date?
    public var disabledReason: String?
    public var pending: Int
    public var dead: Int

    public init(sink: String, active: Bool, disabledAt: Date?, disabledReason: String?, pending: Int, dead: Int) {
        self.sink = sink
        self.active = active
        self.disabledAt = disabledAt
        self.disabledReason = disabledReason
        self.pending = pending
        self.dead = dead
    }
}

/// What one batch of `pruneEvents` did.
public struct EventPruning: Sendable, Equatable {
    /// Deliveries and events removed.
    public var deliveries: Int
    public var events: Int
    /// Events the batch looked at, and the last one's id: the next batch starts after it,
    /// so that events kept (pending, or dead and recent) are not read again and again.
    public var examined: Int
    public var lastEventID: Int64

    public init(deliveries: Int, events: Int, examined: Int, lastEventID: Int64) {
        self.deliveries = deliveries
        self.events = events
        self.examined = examined
        self.lastEventID = lastEventID
    }
}

/// A delivery as `assetd events` lists it.
public struct EventDeliveryStatus: Sendable, Equatable {
    public var eventID: Int64
    public var sink: String
    public var assetID: Int64
    public var type: EventType
    public var state: DeliveryState
    public var attempts: Int
    public var nextAttemptAt: Date
    public var lastError: String?
    public var createdAt: Date
}
