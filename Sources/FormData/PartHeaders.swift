/// The headers of one part, and what Content-Disposition says of it.
public struct PartHeaders: Sendable, Equatable {
    /// Lower-case names, in order.
    public let fields: [(name: String, value: String)]
    /// The form field's name (`name=` of Content-Disposition).
    public let name: String?
    /// The client's file name (`filename=`, or `filename*=` in RFC 5987 form); nil for a plain field.
    public let fileName: String?
    /// The client's claimed Content-Type of the part (never trusted for a type decision).
    public let contentType: String?

    public static func == (lhs: PartHeaders, rhs: PartHeaders) -> Bool {
        lhs.name == rhs.name && lhs.fileName == rhs.fileName && lhs.contentType == rhs.contentType
            && lhs.fields.map(\.name) == rhs.fields.map(\.name) && lhs.fields.map(\.value) == rhs.fields.map(\.value)
    }

    init(parsing bytes: [UInt8]) throws(MultipartError) {
        var fields: [(String, String)] = []
        for rawLine in bytes.split(separator: 0x0a, omittingEmptySubsequences: true) {
            var line = rawLine
            if line.last == 0x0d { line = line.dropLast() }
            if line.isEmpty { continue }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                throw MultipartError("A multipart part has a header line without a colon.")
            }
            let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self).lowercased()
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self)
            fields.append((name.trimmingASCIISpaces(), value.trimmingASCIISpaces()))
        }
        self.fields = fields
        let disposition = fields.first { $0.0 == "content-disposition" }.map { HeaderParameters.split($0.1) }
        guard let disposition, disposition.value.lowercased() == "form-data" else {
            throw MultipartError("A multipart part has no Content-Disposition: form-data header.")
        }
        name = disposition.parameters["name"]
        if let extended = disposition.parameters["filename*"], let decoded = HeaderParameters.decodeRFC5987(extended) {
            fileName = decoded
        } else {
            fileName = disposition.parameters["filename"]
        }
        contentType = fields.first { $0.0 == "content-type" }?.1
    }
}

/// `value; a=1; b="two words"` with quoted strings and backslash escapes.
public enum HeaderParameters {
    public static func split(_ header: String) -> (value: String, parameters: [String: String]) {
        var parameters: [String: String] = [:]
        let bytes = Array(header.utf8)
        var i = 0
        func skipSpaces() { while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 } }
        var valueEnd = 0
        while valueEnd < bytes.count, bytes[valueEnd] != UInt8(ascii: ";") { valueEnd += 1 }
        let value = String(decoding: bytes[0..<valueEnd], as: UTF8.self).trimmingASCIISpaces()
        i = valueEnd
        while i < bytes.count {
            i += 1 // the ';'
            skipSpaces()
            var nameEnd = i
            while nameEnd < bytes.count, bytes[nameEnd] != UInt8(ascii: "="), bytes[nameEnd] != UInt8(ascii: ";") { nameEnd += 1 }
            let name = String(decoding: bytes[i..<nameEnd], as: UTF8.self).trimmingASCIISpaces().lowercased()
            i = nameEnd
            guard i < bytes.count, bytes[i] == UInt8(ascii: "=") else { continue }
            i += 1
            skipSpaces()
            var parameter: [UInt8] = []
            if i < bytes.count, bytes[i] == UInt8(ascii: "\"") {
                i += 1
                while i < bytes.count, bytes[i] != UInt8(ascii: "\"") {
                    if bytes[i] == UInt8(ascii: "\\"), i + 1 < bytes.count { i += 1 }
                    parameter.append(bytes[i])
                    i += 1
                }
                i += 1 // closing quote
                while i < bytes.count, bytes[i] != UInt8(ascii: ";") { i += 1 }
            } else {
                while i < bytes.count, bytes[i] != UInt8(ascii: ";") {
                    parameter.append(bytes[i])
                    i += 1
                }
            }
            if !name.isEmpty, parameters[name] == nil {
                parameters[name] = String(decoding: parameter, as: UTF8.self).trimmingASCIISpaces()
            }
        }
        return (value, parameters)
    }

    /// `UTF-8''na%C3%AFve.jpg` -> `naïve.jpg`; nil for another charset or a bad escape.
    public static func decodeRFC5987(_ text: String) -> String? {
        let parts = text.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].lowercased() == "utf-8" else { return nil }
        var out: [UInt8] = []
        var bytes = parts[2].utf8.makeIterator()
        while let byte = bytes.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = bytes.next().flatMap(hex), let low = bytes.next().flatMap(hex) else { return nil }
                out.append(high << 4 | low)
            } else {
                out.append(byte)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension String {
    func trimmingASCIISpaces() -> String {
        var slice = Substring(self)
        while let c = slice.first, c == " " || c == "\t" { slice.removeFirst() }
        while let c = slice.last, c == " " || c == "\t" { slice.removeLast() }
        return String(slice)
    }
}
