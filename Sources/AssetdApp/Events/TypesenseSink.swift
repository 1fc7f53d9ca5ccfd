import AssetStore
import Foundation
import JSON
import S3Client

/// The Typesense sink (the reference design's search index): ready assets are upserted
/// through the documents import API (on every event but asset.deleted: asset.updated
/// brings a PATCH's title and tags), deleted ones removed.
///
/// - `POST /collections/{c}/documents/import?action=upsert`, a JSONL body (one document a
///   line), header `X-TYPESENSE-API-KEY`. Typesense answers 200 even when documents fail:
///   the answer has one JSON line per document, `{"success": true}` or `{"success": false,
///   "error": ..., "document": ...}`, and each line decides its own delivery.
/// - `DELETE /collections/{c}/documents/{id}`: 200, or 404 when it is not there (delivered).
/// - `POST /collections` (`assetd setup-search`): the collection and its schema; 409 when
///   it exists already.
struct TypesenseSink: EventSink {
    let settings: TypesenseSettings
    let http: any HTTPSending
    var timeout: Duration = .seconds(15)

    var name: String { "typesense:\(settings.url)/collections/\(settings.collection)" }
    var label: String { "typesense" }
    var batchSize: Int { 40 }
    /// One import, and a delete for each deleted asset at most.
    var longestBatch: Duration { timeout * (batchSize + 1) }

    /// The collection's schema: every field a document has; `createdAt` sorts by default.
    static func schema(collection: String) -> JSONValue {
        func field(_ name: String, _ type: String, facet: Bool = false, optional: Bool = false) -> JSONValue {
            var members: [JSONValue.Member] = [.init("name", .string(name)), .init("type", .string(type))]
            if facet { members.append(.init("facet", true)) }
            if optional { members.append(.init("optional", true)) }
            return .object(members)
        }
        return [
            "name": .string(collection),
            "fields": [
                field("workspaceId", "int64", facet: true),
                field("fileName", "string", optional: true),
                field("title", "string", optional: true),
                field("tags", "string[]", facet: true, optional: true),
                field("fileType", "string", facet: true),
                field("type", "string", facet: true),
                field("size", "int64", optional: true),
                field("status", "string", facet: true),
                field("thumbnailStatus", "string", facet: true),
                field("version", "int32"),
                field("createdAt", "int64"),
                field("updatedAt", "int64"),
            ],
            "default_sorting_field": "createdAt",
        ]
    }

    /// The document of an event's asset, from its payload's `data`; nil when the payload
    /// is not one assetd writes (then the delivery fails and is kept).
    static func document(from payload: [UInt8]) -> JSONValue? {
        guard let event = try? JSONParser.parse(payload), let data = event["data"],
              let id = data["assetId"]?.stringValue, let workspace = data["workspaceId"]?.stringValue.flatMap({ Int64($0) }),
              let fileType = data["fileType"]?.stringValue, let status = data["status"]?.stringValue,
              case .number(let version)? = data["version"],
              let created = data["createdAt"]?.stringValue.flatMap(Self.unixTime), let updated = data["updatedAt"]?.stringValue.flatMap(Self.unixTime)
        else { return nil }
        var members: [JSONValue.Member] = [.init("id", .string(id)), .init("workspaceId", .int64(workspace))]
        if let name = data["fileName"]?.stringValue { members.append(.init("fileName", .string(name))) }
        if let title = data["title"]?.stringValue { members.append(.init("title", .string(title))) }
        if case .array(let tags)? = data["tags"] {
            members.append(.init("tags", .array(tags.compactMap { $0.stringValue.map { JSONValue.string($0) } })))
        }
        members.append(.init("fileType", .string(fileType)))
        members.append(.init("type", .string(Self.kind(of: fileType))))
        if case .number(let size)? = data["size"] { members.append(.init("size", .number(size))) }
        members.append(.init("status", .string(status)))
        members.append(.init("thumbnailStatus", .string(data["thumbnail"]?["status"]?.stringValue ?? "none")))
        members += [.init("version", .number(version)), .init("createdAt", .int64(created)), .init("updatedAt", .int64(updated))]
        return .object(members)
    }

    /// image, video, pdf or other (GET /api/assets's `type` filter).
    static func kind(of fileType: String) -> String {
        if fileType.hasPrefix("image/") { return "image" }
        if fileType.hasPrefix("video/") { return "video" }
        if fileType == "application/pdf" { return "pdf" }
        return "other"
    }

    static func unixTime(_ text: String) -> Int64? {
        (try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
            .map { Int64($0.timeIntervalSince1970) }
    }

    var headers: [(String, String)] { [("X-TYPESENSE-API-KEY", settings.apiKey)] }
    var collectionURL: String { "\(settings.url)/collections/\(settings.collection)" }

    func deliver(_ batch: [EventDelivery], now: Date) -> [AttemptResult] {
        var results = [AttemptResult](repeating: .skipped, count: batch.count)
        var upserts: [(index: Int, document: [UInt8])] = []
        for (index, delivery) in batch.enumerated() {
            if delivery.type == .assetDeleted {
                results[index] = delete(assetID: delivery.assetID)
                continue
            }
            guard let document = Self.document(from: delivery.payload) else {
                results[index] = .failed("the event's payload has no document", retryAfter: nil)
                continue
            }
            upserts.append((index, document.serialized()))
        }
        if !upserts.isEmpty {
            for (slot, result) in zip(upserts.map(\.index), importDocuments(upserts.map(\.document))) { results[slot] = result }
        }
        return results
    }

    /// One import of `documents`: a result per document, from its line of the answer.
    func importDocuments(_ documents: [[UInt8]]) -> [AttemptResult] {
        var body: [UInt8] = []
        for (i, document) in documents.enumerated() {
            if i > 0 { body.append(0x0A) }
            body += document
        }
        let answer: HTTPClient.Response
        do {
            answer = try http.send(method: "POST", url: collectionURL + "/documents/import?action=upsert",
                                   headers: headers + [("Content-Type", "text/plain")], body: body, timeout: timeout,
                                   maxResponseBytes: 1 << 20)
        } catch {
            return Array(repeating: .failed(error.description, retryAfter: nil), count: documents.count)
        }
        guard answer.status == 200 else {
            let retryAfter = answer.status == 429 || answer.status == 503 ? RetryPolicy.retryAfter(answer.headers["retry-after"], now: Date()) : nil
            return Array(repeating: .failed("Typesense import answered HTTP \(answer.status)", retryAfter: retryAfter), count: documents.count)
        }
        let lines = answer.body.split(separator: 0x0A, omittingEmptySubsequences: true)
        return documents.indices.map { i in
            guard i < lines.count, let line = try? JSONParser.parse(lines[i]) else {
                return .failed("Typesense's import answer has no line for document \(i + 1)", retryAfter: nil)
            }
            if line["success"] == .bool(true) { return .delivered }
            let why = line["error"]?.stringValue.map { String($0.prefix(300)) } ?? "no error given"
            return .failed("Typesense refused the document: \(why)", retryAfter: nil)
        }
    }

    func delete(assetID: Int64) -> AttemptResult {
        do {
            let answer = try http.send(method: "DELETE", url: collectionURL + "/documents/\(assetID)", headers: headers, body: [],
                                       timeout: timeout, maxResponseBytes: 4096)
            switch answer.status {
            case 200, 404: return .delivered
            case 429, 503:
                return .failed("Typesense delete answered HTTP \(answer.status)", retryAfter: RetryPolicy.retryAfter(answer.headers["retry-after"], now: Date()))
            default: return .failed("Typesense delete answered HTTP \(answer.status)", retryAfter: nil)
            }
        } catch {
            return .failed(error.description, retryAfter: nil)
        }
    }

    /// `assetd setup-search`: creates the collection; true when it was made, false when it
    /// existed already (409). Throws with Typesense's answer otherwise.
    func createCollection() throws -> Bool {
        let answer = try http.send(method: "POST", url: settings.url + "/collections",
                                   headers: headers + [("Content-Type", "application/json")],
                                   body: Self.schema(collection: settings.collection).serialized(), timeout: timeout, maxResponseBytes: 64 * 1024)
        switch answer.status {
        case 200, 201: return true
        case 409: return false
        default:
            throw ConfigurationError(description: "Typesense answered HTTP \(answer.status) to POST /collections: \(String(decoding: answer.body.prefix(300), as: UTF8.self))")
        }
    }
}
