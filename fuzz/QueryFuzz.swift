// libFuzzer target: query-string decoding and the strict id parser on arbitrary text.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let query = QueryParameters(text)
    let pairs = query.pairs
    for (name, value) in pairs {
        // The lazy lookup answers as the decoded pairs do: the first value of an equal name.
        precondition(query[name] == pairs.first(where: { $0.name == name })?.value, "a lookup that differs from the pairs")
        precondition(query.values(name) == pairs.filter({ $0.name == name }).map(\.value), "values that differ from the pairs")
        if let id = parseID(Substring(value)) {
            precondition(id > 0 && String(id) == value, "an id that does not print back as itself")
        }
    }
    return 0
}

/// The same rule as AssetdApp's Input.parseID (that module imports too much to fuzz alone).
func parseID(_ text: Substring) -> Int64? {
    guard !text.isEmpty, text.utf8.count <= 19, text.utf8.first != UInt8(ascii: "0"),
          text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
          let value = Int64(text), value > 0
    else { return nil }
    return value
}
