import AssetStore
import FastCGIServer
import Hashing

/// The `cursor` of GET /api/assets: where the previous page ended (`AssetPosition`),
/// opaque to clients, bound to the query it came from.
///
/// Format (version 1), base64url without padding:
/// `01 | kind | id (8 bytes, big-endian) | key | MAC (16 bytes)`, where kind is 0 created
/// (no key), 1 name (the sort key's UTF-8), 2 size (8 bytes,
/// big-endian two's complement), 3 relevance (the tier, 1 byte, 0 to 2). The MAC is the
/// first 16 bytes of HMAC-SHA256, keyed with HMAC-SHA256(ASSETD_JWT_SECRET, "assetd list
/// cursor"), over the query's context (workspace, q, type, status, sort, order) and the
/// bytes before it. So a cursor made up, changed, or taken from another query or
/// workspace is refused with a 400 before any SQL, and its values only ever reach SQL
/// as bound parameters. Every host with the same secret reads the others' cursors.
/// While ASSETD_JWT_ACCEPTED_SECRETS lists others (a rotation), cursors are made with
/// ASSETD_JWT_SECRET and read with any, as tokens are.
struct ListCursor {
    static let maxTextLength = 2048
    private static let macLength = 16
    /// The key of each secret, ASSETD_JWT_SECRET's (which makes cursors) first, then those of ASSETD_JWT_ACCEPTED_SECRETS.
    private let keys: [[UInt8]]

    init(secrets: [String]) {
        precondition(!secrets.isEmpty, "ListCursor needs a secret")
        keys = secrets.map { HMAC.sha256(key: Array($0.utf8), message: "assetd list cursor") }
    }

    func encode(_ position: AssetPosition, for query: AssetQuery) -> String {
        var bytes: [UInt8] = [1]
        func append(_ value: UInt64) { for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) } }
        switch position {
        case .created(let id):
            bytes.append(0); append(UInt64(bitPattern: id))
        case .name(let name, let id):
            bytes.append(1); append(UInt64(bitPattern: id)); bytes += Array(name.utf8)
        case .size(let size, let id):
            bytes.append(2); append(UInt64(bitPattern: id)); append(UInt64(bitPattern: size))
        case .relevance(let tier, let id):
            bytes.append(3); append(UInt64(bitPattern: id)); bytes.append(UInt8(tier))
        }
        bytes += mac(bytes, query, key: keys[0])
        return Encoding.base64URL(bytes)
    }

    /// The position a cursor names, for this query; a 400 naming `cursor` otherwise.
    /// Plain digits (the id that `next` was before cursors were opaque) still work for
    /// the default order: newest first, no search.
    func decode(_ text: String, for query: AssetQuery) throws -> AssetPosition {
        if let id = Input.parseID(Substring(text)) {
            guard query.text == nil, query.sort == .created, query.order == .descending else {
                throw HTTPError(.badRequest, "cursor does not belong to this query; start again without it.")
            }
            return .created(id: id)
        }
        guard text.utf8.count <= Self.maxTextLength, let bytes = Encoding.decodeBase64URL(Substring(text)),
              bytes.count >= 2 + 8 + Self.macLength, bytes[0] == 1
        else { throw HTTPError(.badRequest, "cursor is not a cursor this service issued.") }
        let body = Array(bytes.dropLast(Self.macLength))
        let given = Array(bytes.suffix(Self.macLength))
        guard keys.contains(where: { constantTimeEqual(mac(body, query, key: $0), given) }) else {
            throw HTTPError(.badRequest, "cursor does not belong to this query; start again without it.")
        }
        let id = body[2..<10].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        let rest = body[10...]
        let position: AssetPosition? = switch body[1] {
        case 0 where rest.isEmpty && query.sort == .created: .created(id: id)
        case 1 where query.sort == .name: String(validating: rest, as: UTF8.self).map { .name(key: $0, id: id) }
        case 2 where rest.count == 8 && query.sort == .size: .size(key: rest.reduce(Int64(0)) { $0 << 8 | Int64($1) }, id: id)
        case 3 where rest.count == 1 && rest.first! <= 2 && query.sort == .relevance: .relevance(tier: Int(rest.first!), id: id)
        default: nil
        }
        guard let position, id > 0 else { throw HTTPError(.badRequest, "cursor is not a cursor this service issued.") }
        return position
    }

    private func mac(_ body: [UInt8], _ query: AssetQuery, key: [UInt8]) -> [UInt8] {
        // Each field is length-prefixed, so that no two contexts write the same bytes.
        var message: [UInt8] = []
        for field in [String(query.workspaceID), query.text?.text ?? "", query.kind?.rawValue ?? "", query.status?.rawValue ?? "",
                      query.sort.rawValue, query.order.rawValue] {
            message += Array(String(field.utf8.count).utf8) + [0x3a] + Array(field.utf8)
        }
        return Array(HMAC.sha256(key: key, message: message + body).prefix(Self.macLength))
    }

    private func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
