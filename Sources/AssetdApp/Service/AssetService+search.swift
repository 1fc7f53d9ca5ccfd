public import AssetStore

/// Titles, tags, and the listing with its search (docs/API.md, "Search").
extension AssetService {
    /// The bounds of a title, of tags, and of a search text (docs/API.md).
    public enum SearchLimits {
        public static let titleBytes = 255
        public static let tagCount = 32
        public static let tagBytes = 64
        public static let queryBytes = 200
        public static let queryWords = 16
    }

    /// A page of the query, each asset with its archived versions and its position.
    public func assets(_ query: AssetQuery) throws -> [(asset: AssetRecord, versions: [AssetVersionRecord], position: AssetPosition)] {
        let page = try records.searchAssets(query)
        let versions = try records.versions(assetIDs: page.map(\.asset.id))
        return page.map { ($0.asset, versions[$0.asset.id] ?? [], $0.position) }
    }

    /// Sets the title and/or the tags of an asset of the workspace. The title is trimmed
    /// (empty clears it), each tag trimmed, repeats dropped (the first kept); bounds and
    /// control characters are refused, naming the field.
    public func describeAsset(_ id: Int64, in workspaceID: Int64, title: FieldEdit<String?>, tags: FieldEdit<[String]>) throws -> AssetRecord {
        var title = title
        if case .set(let value?) = title {
            let trimmed = try Self.label(value, field: "title", maxBytes: SearchLimits.titleBytes)
            title = .set(trimmed.isEmpty ? nil : trimmed)
        }
        var tags = tags
        if case .set(let values) = tags {
            guard values.count <= SearchLimits.tagCount else {
                throw AssetError.invalid("tags holds \(values.count) tags; at most \(SearchLimits.tagCount) are allowed.")
            }
            var kept: [String] = []
            for (index, value) in values.enumerated() {
                let tag = try Self.label(value, field: "tags[\(index)]", maxBytes: SearchLimits.tagBytes)
                guard !tag.isEmpty else { throw AssetError.invalid("tags[\(index)] is empty.") }
                if !kept.contains(tag) { kept.append(tag) }
            }
            tags = .set(kept)
        }
        guard let asset = try records.describeAsset(id: id, workspaceID: workspaceID, title: title, tags: tags) else {
            throw AssetError.notFound("Asset \(id) was not found in workspace \(workspaceID).")
        }
        return asset
    }

    /// A label trimmed of white space, refused with control characters (C0, DEL, C1, line
    /// and paragraph separators, bidirectional overrides) or beyond `maxBytes` of UTF-8.
    static func label(_ text: String, field: String, maxBytes: Int) throws -> String {
        if text.unicodeScalars.contains(where: isControl) {
            throw AssetError.invalid("\(field) must not contain control characters.")
        }
        let trimmed = text.trimmingSpaces()
        guard trimmed.utf8.count <= maxBytes else {
            throw AssetError.invalid("\(field) is \(trimmed.utf8.count) bytes long; at most \(maxBytes) bytes of UTF-8 are allowed.")
        }
        return trimmed
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        return value < 0x20 || (0x7f...0x9f).contains(value) || value == 0x2028 || value == 0x2029
            || (0x202A...0x202E).contains(value) || (0x2066...0x2069).contains(value) || value == 0x200E || value == 0x200F
    }
}
