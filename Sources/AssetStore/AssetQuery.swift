/// What GET /api/assets asks of the store: a workspace's assets, filtered, searched,
/// sorted, one page after a position.
///
/// The semantics every backend reproduces (docs/API.md, "Search"):
/// - Only assets of `workspaceID` that are neither deleted nor being deleted.
/// - With `text`, an asset matches in one of three tiers (`SearchText`); relevance lists
///   tier 0, then 1, then 2, each newest first (id descending). Another sort lists every
///   match in that sort's order.
/// - `name` sorts by the file name with ASCII letters lower-cased (no file name sorts as
///   ""), compared byte by byte; `size` by the size (unknown sorts as -1); `created` by
///   the id, which the database issues in creation order. Ties go by id, in the same
///   direction.
/// - `after` is the position of the last asset of the previous page: the page starts
///   strictly after it in that order, so that assets added meanwhile neither shift it
///   nor repeat.
public struct AssetQuery: Sendable, Equatable {
    public var workspaceID: Int64
    public var text: SearchText?
    public var kind: AssetKind?
    public var status: AssetStatus?
    public var sort: AssetSort
    public var order: ListOrder
    public var after: AssetPosition?
    public var limit: Int

    public init(workspaceID: Int64, text: SearchText? = nil, kind: AssetKind? = nil, status: AssetStatus? = nil,
                sort: AssetSort = .created, order: ListOrder = .descending, after: AssetPosition? = nil, limit: Int = 50) {
        self.workspaceID = workspaceID
        self.text = text
        self.kind = kind
        self.status = status
        self.sort = sort
        self.order = order
        self.after = after
        self.limit = limit
    }
}

/// The `type` filter: a family of detected types (`fileType`).
public enum AssetKind: String, Sendable, CaseIterable {
    /// `image/*`.
    case image
    /// `video/*`.
    case video
    /// `application/pdf`.
    case pdf
}

public enum AssetSort: String, Sendable, CaseIterable {
    case created, name, size
    /// Best matches first: only with a search text, and only descending.
    case relevance
}

public enum ListOrder: String, Sendable {
    case ascending = "asc"
    case descending = "desc"
}

/// Where a page ended, in the terms of its sort: the sort key of the last asset and its id.
public enum AssetPosition: Sendable, Equatable {
    case created(id: Int64)
    /// `key` is the name as it sorts: ASCII-lower-cased, "" for none.
    case name(key: String, id: Int64)
    /// `key` is the size as it sorts: -1 for unknown.
    case size(key: Int64, id: Int64)
    /// `tier` is 0, 1 or 2 (`SearchText`).
    case relevance(tier: Int, id: Int64)

    public var id: Int64 {
        switch self {
        case .created(let id), .name(_, let id), .size(_, let id), .relevance(_, let id): id
        }
    }
}

/// A search text (the `q` of GET /api/assets) and the two ways it matches.
///
/// - `words`: the runs of letters (Unicode L*), digits (N*) and private-use characters
///   (Co) in the text, the characters SQLite's unicode61 tokenizer keeps in a token; all
///   others separate words. File names split at `_`, `.`, `-` and spaces the same way.
/// - `substring`: the whole text, trimmed of spaces, when it has at least 3 characters.
///
/// An asset's words are those of its file name, title and tags, compared with case and
/// accents folded (`Café` is `cafe`). It matches in
/// - tier 0 when every word of the text is one of its words;
/// - tier 1 when every word of the text begins one of its words (`bea` and `beach_2024.jpg`);
/// - tier 2 when the substring is in its file name, title or a tag, case folded but not
///   accents (`ch_20` and `beach_2024.jpg`);
/// the first tier that holds. Punctuation is never syntax: backends quote every word.
public struct SearchText: Sendable, Equatable {
    public let text: String
    public let words: [String]

    /// nil for a text of nothing but spaces.
    public init?(_ raw: String) {
        let trimmed = raw.trimmingSpaces()
        guard !trimmed.isEmpty else { return nil }
        text = trimmed
        words = Self.words(of: trimmed)
    }

    /// The text when it is long enough to match as a substring.
    public var substring: String? { text.unicodeScalars.count >= 3 ? text : nil }

    /// The characters unicode61 keeps in its tokens (its default `categories`: L* N* Co).
    static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .decimalNumber, .letterNumber, .otherNumber, .privateUse:
            true
        default:
            false
        }
    }

    static func words(of text: String) -> [String] {
        var words: [String] = []
        var current = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isWordScalar(scalar) {
                current.append(scalar)
            } else if !current.isEmpty {
                words.append(String(current))
                current = String.UnicodeScalarView()
            }
        }
        if !current.isEmpty { words.append(String(current)) }
        return words
    }
}

/// A change to one field: left as it is, or set (nil clears an optional one).
public enum FieldEdit<Value: Sendable & Equatable>: Sendable, Equatable {
    case keep
    case set(Value)
}

extension String {
    /// Without leading and trailing Unicode white space.
    func trimmingSpaces() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
